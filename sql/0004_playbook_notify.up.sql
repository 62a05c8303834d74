-- Notifies channel ace_playbook_changed with the agent_id of every playbook row inserted, updated or deleted, so that ace-cache listen removes the stale Redis key.
CREATE FUNCTION ace_notify_playbook_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- PostgreSQL drops duplicate notifications within one transaction, so a bulk change sends each agent once.
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ace_playbook_changed', OLD.agent_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ace_playbook_changed', NEW.agent_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER context_playbooks_notify
    AFTER INSERT OR UPDATE OR DELETE ON context_playbooks
    FOR EACH ROW EXECUTE FUNCTION ace_notify_playbook_changed();

-- TRUNCATE fires no row trigger: notify with an empty agent_id, which ace-cache listen reads as "every agent".
CREATE FUNCTION ace_notify_playbooks_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ace_playbook_changed', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER context_playbooks_notify_truncate
    AFTER TRUNCATE ON context_playbooks
    FOR EACH STATEMENT EXECUTE FUNCTION ace_notify_playbooks_truncated();
