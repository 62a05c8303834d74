-- Versioned playbooks; the newest row of an agent is its current playbook.
CREATE TABLE context_playbooks (
    playbook_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id    text        NOT NULL CHECK (char_length(agent_id) BETWEEN 1 AND 255),
    context     jsonb       NOT NULL,
    version     integer     NOT NULL CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    metadata    jsonb       NOT NULL DEFAULT '{}',
    UNIQUE (agent_id, version)
);

-- The latest playbook of an agent: the highest version.
CREATE INDEX context_playbooks_agent_version_idx
    ON context_playbooks (agent_id, version DESC);
