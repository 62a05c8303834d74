DROP TRIGGER context_playbooks_notify_truncate ON context_playbooks;
DROP FUNCTION ace_notify_playbooks_truncated();
DROP TRIGGER context_playbooks_notify ON context_playbooks;
DROP FUNCTION ace_notify_playbook_changed();
