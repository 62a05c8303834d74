DROP TABLE context_playbooks;
