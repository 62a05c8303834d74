# Tests scripts/tau2-to-ace.jq on the tau2-bench fixtures and loads its output with ace-ingest.

load helpers

FIXTURE_DIR="$REPO/tests/fixtures/tau2"
MAPPING="$REPO/scripts/tau2-to-ace.jq"

setup_file() {
	ace_setup_servers
}

teardown_file() {
	ace_teardown_servers
}

setup() {
	ace_fresh_db

	RECORDS="$BATS_TEST_TMPDIR/tau2.ndjson"
	: >"$RECORDS"
	local fixture
	for fixture in "$FIXTURE_DIR"/*.json; do
		jq -c -f "$MAPPING" "$fixture" >>"$RECORDS"
	done
}

# Prints the record count that COUNTS documents for NAME (a fixture file name or "total").
documented_count() {
	awk -v name="$1" '$1 == name { print $2 }' "$FIXTURE_DIR/COUNTS"
}

# Fails, printing the output of the last `run`, unless its status is EXPECTED.
expect_status() {
	if [ "$status" -ne "$1" ]; then
		echo "expected status $1, got $status; output:"
		echo "$output"
		return 1
	fi
}

# Fails unless ACTUAL equals EXPECTED, naming WHAT was compared.
expect_equal() {
	if [ "$1" != "$2" ]; then
		echo "$3: expected '$2', got '$1'"
		return 1
	fi
}

# Fails, printing the first record that breaks it, unless every record in
# $RECORDS satisfies the jq condition RULE, described by DESCRIPTION.
expect_every_record() {
	local description="$1" rule="$2" first_failing
	first_failing=$(jq -n -c "first(inputs | select(($rule) | not))" "$RECORDS")
	if [ -n "$first_failing" ]; then
		echo "rule broken: $description"
		echo "first record that breaks it: $first_failing"
		return 1
	fi
}

# Creates the schema in the test's database and loads $RECORDS with ace-ingest.
ingest_records() {
	run ace-migrate up
	expect_status 0

	run ace-ingest "$RECORDS"
	expect_status 0
}

@test "tau2-to-ace count per fixture" {
	local fixture name messages records
	for fixture in "$FIXTURE_DIR"/*.json; do
		name=$(basename "$fixture")
		messages=$(jq '[.simulations[].messages | length] | add' "$fixture")
		jq -c -f "$MAPPING" "$fixture" >"$BATS_TEST_TMPDIR/$name.ndjson"
		records=$(wc -l <"$BATS_TEST_TMPDIR/$name.ndjson")

		expect_equal "$records" "$(documented_count "$name")" "records from $name against COUNTS"
		expect_equal "$records" "$messages" "records from $name against its messages"
	done

	expect_equal "$(wc -l <"$RECORDS")" "$(documented_count total)" "records from all fixtures"
}

@test "tau2-to-ace records follow the rules" {
	expect_every_record "a record is a JSON object" 'type == "object"'
	expect_every_record "metric_id is left to ace-ingest" 'has("metric_id") | not'
	expect_every_record "no field is null" 'all(.[]; . != null)'
	expect_every_record "recorded_at is RFC 3339 in UTC" \
		'.recorded_at | type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")'
	expect_every_record "agent_id is 1 to 255 characters without control characters" \
		'.agent_id | type == "string" and length >= 1 and length <= 255 and all(explode[]; . >= 32 and . != 127)'
	expect_every_record "task_id is 1 to 255 characters without control characters" \
		'.task_id | type == "string" and length >= 1 and length <= 255 and all(explode[]; . >= 32 and . != 127)'
	expect_every_record "task_type is at most 100 characters" \
		'.task_type | type == "string" and length <= 100'
	expect_every_record "stage is one of the four stages" \
		'.stage | IN("planning", "execution", "reflection", "verification")'
	expect_every_record "stage_success_rate is 0 or 1" '.stage_success_rate | IN(0, 1)'
	expect_every_record "stage_error_rate is 0 or 1" '.stage_error_rate | IN(0, 1)'
	expect_every_record "success and error rates add up to 1" \
		'.stage_success_rate + .stage_error_rate == 1'
	expect_every_record "stage_duration_ms is an integer >= 0" \
		'.stage_duration_ms | type == "number" and . >= 0 and floor == .'
	expect_every_record "stage_action_count is an integer >= 0" \
		'.stage_action_count | type == "number" and . >= 0 and floor == .'
	expect_every_record "overall_progress_velocity is >= 0" \
		'.overall_progress_velocity | type == "number" and . >= 0'
	expect_every_record "error_accumulation_rate is >= 0" \
		'.error_accumulation_rate | type == "number" and . >= 0'
}

@test "tau2-to-ace stage follows the message" {
	expect_every_record "tool results are execution with one action" \
		'(.role == "tool") == (.stage == "execution") and (.role != "tool" or .stage_action_count == 1)'
	expect_every_record "planning requests tools" \
		'(.stage == "planning") == (.role != "tool" and .stage_action_count > 0 and (.tool_names | length) == .stage_action_count)'
	expect_every_record "reflection is an agent text reply" \
		'.stage != "reflection" or (.role == "assistant" and .stage_action_count == 0)'
	expect_every_record "verification is a user-simulator text reply" \
		'.stage != "verification" or (.role == "user" and .stage_action_count == 0)'
	expect_every_record "failed records carry their errors" \
		'(.stage_error_rate == 1) == (.errors | length > 0)'
}

@test "tau2-to-ace agent ids" {
	local agents
	agents=$(jq -r '.agent_id' "$RECORDS" | sort -u)

	expect_equal "$agents" "tau2/airline/llm_agent/ft:gpt-4.1-2025-04-14:sierra:tau2-full-sft:BzrYdMNm
tau2/airline/llm_agent/gpt-4.1
tau2/airline/user_simulator/gpt-4.1
tau2/retail/llm_agent/gpt-4.1
tau2/retail/user_simulator/gpt-4.1
tau2/telecom/llm_agent/gpt-4.1
tau2/telecom/llm_agent_solo/gpt-4.1
tau2/telecom/user_simulator/gpt-4.1" "agent ids"
}

@test "tau2-to-ace first record of a run" {
	local first
	jq -c -f "$MAPPING" "$FIXTURE_DIR/airline-gpt-4.1.json" >"$BATS_TEST_TMPDIR/airline.ndjson"
	first=$(head -n 1 "$BATS_TEST_TMPDIR/airline.ndjson")

	# The greeting comes 14.388 ms after the simulation's start_time
	# (16:20:44.321269), and no model produced it, so it has no tokens.
	expect_equal "$(jq -r '.recorded_at' <<<"$first")" "2025-08-01T16:20:44.335657Z" "recorded_at"
	expect_equal "$(jq -r '.stage_duration_ms' <<<"$first")" "14" "stage_duration_ms"
	expect_equal "$(jq -r '.stage' <<<"$first")" "reflection" "stage"
	expect_equal "$(jq -r '.task_id' <<<"$first")" "airline/13" "task_id"
	expect_equal "$(jq -r 'has("prompt_tokens")' <<<"$first")" "false" "has prompt_tokens"
}

@test "tau2-to-ace rejects a UTC offset" {
	run jq -c -f "$MAPPING" <<<'{"info": {"environment_info": {"domain_name": "airline"}, "agent_info": {"llm": "m"}, "user_info": {"llm": "u"}},
		"simulations": [{"id": "s", "task_id": "1", "start_time": "2025-08-01T16:20:44+00:00", "messages": []}]}'

	expect_status 5
	[[ "$output" == *"invalid tau2-bench timestamp"* ]]
}

@test "ace-ingest loads the fixture" {
	ingest_records

	run ace_psql "SELECT count(*) FROM performance_metrics"
	expect_status 0
	expect_equal "$output" "$(documented_count total)" "rows in performance_metrics"
}

@test "ace-ingest rows per stage" {
	ingest_records

	local stage expected actual sum=0
	for stage in planning execution reflection verification; do
		expected=$(jq -n --arg stage "$stage" '[inputs | select(.stage == $stage)] | length' "$RECORDS")
		actual=$(ace_psql "SELECT count(*) FROM performance_metrics WHERE stage = '$stage'")

		[ "$expected" -gt 0 ]
		expect_equal "$actual" "$expected" "rows with stage $stage"
		sum=$((sum + actual))
	done

	expect_equal "$sum" "$(documented_count total)" "rows summed over the stages"
}

@test "ace-ingest keeps attributes" {
	ingest_records

	local expected_calls expected_tokens
	expected_calls=$(jq -n '[inputs | select(has("prompt_tokens"))] | length' "$RECORDS")
	expected_tokens=$(jq -n '[inputs | .prompt_tokens // 0] | add' "$RECORDS")

	expect_equal "$(ace_psql "SELECT count(*) FROM performance_metrics WHERE attributes ? 'prompt_tokens'")" \
		"$expected_calls" "rows with prompt_tokens"
	expect_equal "$(ace_psql "SELECT sum((attributes->>'prompt_tokens')::bigint) FROM performance_metrics")" \
		"$expected_tokens" "sum of prompt_tokens"
	expect_equal "$(ace_psql "SELECT count(*) FROM performance_metrics WHERE attributes->>'role' = 'tool'")" \
		"$(jq -n '[inputs | select(.role == "tool")] | length' "$RECORDS")" "rows with role tool"
}

@test "ace-ingest keeps ids and times" {
	ingest_records

	local telecom_rows
	telecom_rows=$(jq -n '[inputs | select(.task_id | startswith("telecom/[mobile_data_issue]"))] | length' "$RECORDS")

	[ "$telecom_rows" -gt 0 ]
	expect_equal "$(ace_psql "SELECT count(*) FROM performance_metrics WHERE task_id LIKE 'telecom/[mobile\_data\_issue]%'")" \
		"$telecom_rows" "rows with a telecom task id"
	expect_equal "$(ace_psql "SELECT count(*) FROM performance_metrics WHERE recorded_at = '2025-08-01 16:20:44.335657+00'")" \
		"1" "rows at the first greeting's timestamp"
}
