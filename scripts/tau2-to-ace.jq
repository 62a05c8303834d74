# Converts one tau2-bench results file into ace-ingest records, one per message.
#
# Usage: jq -c -f scripts/tau2-to-ace.jq RESULTS.json | ace-ingest
#
# Input: a tau2-bench results document {timestamp, info, simulations[]}, as
# written by tau2-bench (https://github.com/sierra-research/tau2-bench).
# Each simulation is one run of one task: an agent LLM talks to a
# user-simulator LLM, and either of them may call tools.
# NOTE: tau2-bench writes timestamps in the local time of the machine that
# ran it, with no UTC offset (datetime.now().isoformat() in
# src/tau2/utils/utils.py), so the true offset is unknown. This program reads
# them as UTC. Durations and rates do not depend on that choice.
#
# Output: one JSON object per message in simulations[].messages[], in file
# order, so the line count equals the total number of messages.
#
# Who and what:
#   agent_id   "tau2/<domain>/<implementation>/<model>". Agent LLM calls
#              and the tool results the agent requested take the agent's
#              implementation and model from info.agent_info, for example
#              "tau2/airline/llm_agent/gpt-4.1" or, for the agent that works
#              without a user, "tau2/telecom/llm_agent_solo/gpt-4.1".
#              User-simulator LLM calls and the tool results the user
#              simulator requested take them from info.user_info, for
#              example "tau2/airline/user_simulator/gpt-4.1". In the telecom
#              domain the simulated customer operates a phone through tools.
#   task_id    "<domain>/<task id>", with the task id kept as written
#              (telecom ids contain "[", "]", "|" and ":").
#   task_type  the domain: airline, retail or telecom.
#
# Stage, by message:
#   planning      an LLM call (agent or user simulator) that requests tool
#                 calls: the model chooses the next actions.
#   execution     a tool result: the requested action ran.
#   reflection    an agent LLM call that answers in text: the agent reads
#                 the tool results and the conversation and reports back.
#                 The fixed greeting that opens most conversations is one
#                 too, without token counts because no model produced it.
#   verification  a user-simulator LLM call that answers in text: the
#                 simulated customer checks the agent's reply against the
#                 task's goal and confirms, corrects or ends the run.
#
# Metrics:
#   recorded_at                 the message timestamp with "Z" appended.
#   stage_duration_ms           ms since the previous message in the
#                               simulation, or since its start_time for the
#                               first message. For an LLM call this is the
#                               call's latency, for a tool result the
#                               tool's run time.
#   stage_action_count          tool calls the LLM call requested, 1 for a
#                               tool result.
#   stage_success_rate and      1 and 0, or 0 and 1 when the message failed:
#   stage_error_rate            an LLM call with a non-empty "errors" list
#                               (tau2-bench rejected its output) or a tool
#                               result with "error": true.
#   overall_progress_velocity   tool results so far in the simulation
#                               (this message included) per minute since its
#                               start_time, and 0 at zero elapsed time.
#   error_accumulation_rate     failed messages so far in the simulation
#                               per minute since its start_time, and 0 at
#                               zero elapsed time.
# context_staleness_score, intervention_effectiveness and baseline_delta are
# left out because tau2-bench records nothing they could be derived from.
#
# Extra fields, which ace-ingest stores in the attributes column:
#   role               assistant, user or tool, as in tau2-bench.
#   model              the LLM that made the call (absent on tool results).
#   prompt_tokens,     token counts from the call's usage (absent on tool
#   completion_tokens  results and on the fixed greeting).
#   cost_usd           the call's cost in US dollars, copied as given
#                      (absent on tool results). NOTE: the published runs
#                      of the fine-tuned agent model report 0 for every call.
#   requestor          who requested a tool result: assistant or user.
#   tool_call_id       the id of the tool call a tool result answers.
#   tool_names         names of the tools requested by an LLM call, or the
#                      tool that produced a tool result.
#   errors             the LLM call's error strings, or a failed tool
#                      result's content as a one-string list.
#   simulation_id, turn_idx, reward, termination_reason
#                      the simulation's id, the message's turn index, the
#                      simulation's final reward (1 = task solved) and why
#                      it stopped (agent_stop, user_stop, ...).
# A field whose source value is missing or null is left out.

# Converts a tau2-bench timestamp such as "2025-08-01T16:20:44.335657"
# (UTC, no offset) to microseconds since the Unix epoch. The result is an
# integer below 2^53, so the double that jq stores it in holds it exactly,
# and differences between timestamps are exact too. Digits past
# microseconds are dropped.
def epoch_us:
  . as $timestamp
  | if type != "string" or (test("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?$") | not) then
      error("invalid tau2-bench timestamp \($timestamp | tojson): expected YYYY-MM-DDTHH:MM:SS[.ffffff] without offset")
    else
      (.[0:19] + "Z" | fromdateiso8601) * 1000000
      + ((.[20:] + "000000")[0:6] | tonumber)
    end;

# Returns count per minute of elapsed_us, or 0 when no time has passed.
def per_minute($count; $elapsed_us):
  if $elapsed_us > 0 then $count / ($elapsed_us / 60000000) else 0 end;

# Returns true when an LLM call's output was rejected or a tool call failed.
def failed:
  if .role == "tool" then .error == true else (.errors | length) > 0 end;

# Adds {key: value} to the object unless value is null.
def put($key; $value):
  if $value == null then . else . + {($key): $value} end;

if (.info.environment_info.domain_name | type) != "string" or (.info.agent_info.llm | type) != "string" then
  error("not a tau2-bench results file: info.environment_info.domain_name and info.agent_info.llm must be strings")
else . end
| .info.environment_info.domain_name as $domain
| "tau2/\($domain)/\(.info.agent_info.implementation // "agent")/\(.info.agent_info.llm)" as $agent_id
| "tau2/\($domain)/\(.info.user_info.implementation // "user_simulator")/\(.info.user_info.llm)" as $user_sim_id
| .info.agent_info.llm as $agent_model
| .info.user_info.llm as $user_model
| .simulations[]
| . as $simulation
| ($simulation.start_time | epoch_us) as $start_us
| foreach $simulation.messages[] as $message (
    {previous_us: $start_us, tool_results: 0, failures: 0, tool_names_by_call_id: {}};

    ($message.timestamp | epoch_us) as $now_us
    | .duration_us = ($now_us - .previous_us)
    | .elapsed_us = ($now_us - $start_us)
    | .previous_us = $now_us
    | .failed = ($message | failed)
    | .failures += (if .failed then 1 else 0 end)
    | .tool_results += (if $message.role == "tool" then 1 else 0 end)
    | .tool_names_by_call_id += ([$message.tool_calls // [] | .[] | {key: .id, value: .name}] | from_entries);

    . as $state
    | ($message.role) as $role
    | (if $role == "tool" then $message.requestor else $role end) as $actor
    | ($message.tool_calls // [] | map(.name)) as $requested_tools
    | {
        recorded_at: ($message.timestamp + "Z"),
        agent_id: (if $actor == "user" then $user_sim_id else $agent_id end),
        task_id: "\($domain)/\($simulation.task_id)",
        task_type: $domain,
        stage: (
          if $role == "tool" then "execution"
          elif ($requested_tools | length) > 0 then "planning"
          elif $role == "user" then "verification"
          else "reflection"
          end),
        stage_success_rate: (if $state.failed then 0 else 1 end),
        stage_error_rate: (if $state.failed then 1 else 0 end),
        stage_duration_ms: ($state.duration_us / 1000 | round),
        stage_action_count: (if $role == "tool" then 1 else ($requested_tools | length) end),
        overall_progress_velocity: per_minute($state.tool_results; $state.elapsed_us),
        error_accumulation_rate: per_minute($state.failures; $state.elapsed_us),
        role: $role
      }
    | put("model"; if $role == "assistant" then $agent_model elif $role == "user" then $user_model else null end)
    | put("prompt_tokens"; $message.usage.prompt_tokens)
    | put("completion_tokens"; $message.usage.completion_tokens)
    | put("cost_usd"; $message.cost)
    | put("requestor"; $message.requestor)
    | put("tool_call_id"; if $role == "tool" then $message.id else null end)
    | put("tool_names";
        if $role == "tool" then
          ($state.tool_names_by_call_id[$message.id // ""] | if . == null then null else [.] end)
        elif ($requested_tools | length) > 0 then $requested_tools
        else null
        end)
    | put("errors";
        if $role == "tool" then (if $state.failed then [$message.content] else null end)
        elif $state.failed then $message.errors
        else null
        end)
    | put("simulation_id"; $simulation.id)
    | put("turn_idx"; $message.turn_idx)
    | put("reward"; $simulation.reward_info.reward)
    | put("termination_reason"; $simulation.termination_reason)
  )
