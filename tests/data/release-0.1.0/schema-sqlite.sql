-- The tables release 0.1.0 created in an empty SQLite database (its create_all), and the
-- version row it wrote. Frozen: the upgrade tests start from exactly this.
CREATE TABLE orchestrator_meta (
	"key" VARCHAR(64) NOT NULL,
	value VARCHAR(255) NOT NULL,
	PRIMARY KEY ("key")
);

CREATE TABLE threads (
	id VARCHAR(36) NOT NULL,
	team_id VARCHAR(32) NOT NULL,
	channel_id VARCHAR(32) NOT NULL,
	thread_ts VARCHAR(32) NOT NULL,
	state VARCHAR(32) NOT NULL,
	version INTEGER NOT NULL,
	agent VARCHAR(255),
	requester VARCHAR(32),
	requester_is_bot BOOLEAN NOT NULL,
	run_id VARCHAR(64),
	message_ts JSON NOT NULL,
	last_input JSON,
	error_kind VARCHAR(64),
	error_text TEXT,
	created_at FLOAT NOT NULL,
	updated_at FLOAT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (team_id, channel_id, thread_ts)
);

CREATE INDEX ix_threads_state ON threads (state);

CREATE TABLE inbound_events (
	"key" VARCHAR(255) NOT NULL,
	at FLOAT NOT NULL,
	PRIMARY KEY ("key")
);

CREATE INDEX ix_inbound_events_at ON inbound_events (at);

CREATE TABLE transitions (
	id INTEGER NOT NULL,
	thread_id VARCHAR(36) NOT NULL,
	from_state VARCHAR(32) NOT NULL,
	to_state VARCHAR(32) NOT NULL,
	"trigger" VARCHAR(64) NOT NULL,
	actor VARCHAR(64),
	detail JSON NOT NULL,
	at FLOAT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE INDEX ix_transitions_thread_id ON transitions (thread_id);

CREATE TABLE conversation_messages (
	id INTEGER NOT NULL,
	thread_id VARCHAR(36) NOT NULL,
	seq INTEGER NOT NULL,
	message JSON NOT NULL,
	sent BOOLEAN NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (thread_id, seq),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE TABLE interrupts (
	id VARCHAR(36) NOT NULL,
	thread_id VARCHAR(36) NOT NULL,
	interrupt_id VARCHAR(255) NOT NULL,
	run_id VARCHAR(64),
	wire_form VARCHAR(16) NOT NULL,
	message TEXT NOT NULL,
	reason VARCHAR(255),
	tool_call_id VARCHAR(255),
	tool_name VARCHAR(255),
	tool_args TEXT,
	response_schema JSON,
	fields JSON,
	labels JSON NOT NULL,
	requester VARCHAR(32),
	approvers JSON NOT NULL,
	form_ts VARCHAR(32),
	status VARCHAR(16) NOT NULL,
	answered_by VARCHAR(32),
	answered_at FLOAT,
	answer JSON,
	decision VARCHAR(16),
	expires_at FLOAT,
	remind_at FLOAT,
	created_at FLOAT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (thread_id, interrupt_id),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE INDEX ix_interrupts_due ON interrupts (status, expires_at);

CREATE INDEX ix_interrupts_thread_id ON interrupts (thread_id);

CREATE INDEX ix_interrupts_status ON interrupts (status);

CREATE TABLE run_leases (
	thread_id VARCHAR(36) NOT NULL,
	owner VARCHAR(255) NOT NULL,
	expires_at FLOAT NOT NULL,
	PRIMARY KEY (thread_id),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE INDEX ix_run_leases_owner ON run_leases (owner);

CREATE TABLE queued_messages (
	id INTEGER NOT NULL,
	thread_id VARCHAR(36) NOT NULL,
	ts VARCHAR(32) NOT NULL,
	user VARCHAR(32) NOT NULL,
	is_bot BOOLEAN NOT NULL,
	message JSON NOT NULL,
	created_at FLOAT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE INDEX ix_queued_messages_thread_id ON queued_messages (thread_id);

CREATE TABLE answers (
	run_id VARCHAR(64) NOT NULL,
	thread_id VARCHAR(36) NOT NULL,
	"view" JSON NOT NULL,
	message_ts JSON NOT NULL,
	status VARCHAR(16) NOT NULL,
	regenerated_by VARCHAR(32),
	regenerated_at FLOAT,
	created_at FLOAT NOT NULL,
	PRIMARY KEY (run_id),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE INDEX ix_answers_thread_id ON answers (thread_id);

CREATE TABLE feedback (
	id INTEGER NOT NULL,
	thread_id VARCHAR(36) NOT NULL,
	run_id VARCHAR(64) NOT NULL,
	user VARCHAR(32) NOT NULL,
	rating VARCHAR(8) NOT NULL,
	reasons JSON NOT NULL,
	comment TEXT,
	created_at FLOAT NOT NULL,
	updated_at FLOAT NOT NULL,
	forward_state VARCHAR(16),
	forward_due FLOAT,
	forward_attempts INTEGER NOT NULL,
	forward_error TEXT,
	forwarded_at FLOAT,
	PRIMARY KEY (id),
	UNIQUE (run_id, user),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

CREATE INDEX ix_feedback_forward_due ON feedback (forward_due);

CREATE INDEX ix_feedback_thread_id ON feedback (thread_id);

CREATE TABLE escalations (
	thread_id VARCHAR(36) NOT NULL,
	user VARCHAR(32) NOT NULL,
	targets JSON NOT NULL,
	run_id VARCHAR(64),
	at FLOAT NOT NULL,
	PRIMARY KEY (thread_id),
	FOREIGN KEY(thread_id) REFERENCES threads (id) ON DELETE CASCADE
);

INSERT INTO orchestrator_meta (key, value) VALUES ('schema_version', '1');
