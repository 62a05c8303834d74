# Checks a file against the rules of the Prometheus text format 0.0.4 and prints each violation with its line number; exits 1 when any was found.
#
# Rules: every line is a "# HELP", a "# TYPE" or a sample; a family's HELP
# and TYPE come once, before its samples; the lines of a family are
# contiguous; a sample's name is its family's (or, for a histogram, the
# family's _bucket, _sum and _count); labels are name="value" with only
# \\, \" and \n escaped; a value is a float, NaN, +Inf or -Inf, with no
# timestamp after it; counters end in _total; a histogram's buckets carry
# le, end with le="+Inf", and no series appears twice.

function fail(msg) {
  printf "line %d: %s: %s\n", NR, msg, $0
  bad = 1
}

# Starts family NAME unless it is the current one; a family may not come back later.
function enter(name) {
  if (name == current) return
  if (name in done) fail("family " name " is not contiguous")
  if (current != "") done[current] = 1
  current = name
}

BEGIN {
  name_re = "^[a-zA-Z_:][a-zA-Z0-9_:]*"
  value_re = "^([-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$"
  label_re = "^[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\""
}

/^# HELP / {
  if (!match($3, name_re "$")) fail("bad metric name in HELP")
  enter($3)
  if (($3 SUBSEP "help") in seen) fail("second HELP")
  seen[$3 SUBSEP "help"] = 1
  next
}

/^# TYPE / {
  if (NF != 4) fail("TYPE needs a name and a type")
  if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) fail("unknown type " $4)
  enter($3)
  if ($3 in type) fail("second TYPE")
  if (($3 SUBSEP "sampled") in seen) fail("TYPE after samples")
  type[$3] = $4
  if ($4 == "counter" && $3 !~ /_total$/) fail("counter without _total")
  next
}

/^#/ { next }

/^$/ { fail("empty line"); next }

{
  line = $0
  if (!match(line, name_re)) { fail("no metric name"); next }
  sample = substr(line, 1, RLENGTH)
  rest = substr(line, RLENGTH + 1)
  labels = ""
  if (substr(rest, 1, 1) == "{") {
    rest = substr(rest, 2)
    while (substr(rest, 1, 1) != "}") {
      if (!match(rest, label_re)) { fail("bad label"); next }
      labels = labels substr(rest, 1, RLENGTH) ","
      rest = substr(rest, RLENGTH + 1)
      if (substr(rest, 1, 1) == ",") rest = substr(rest, 2)
      else if (substr(rest, 1, 1) != "}") { fail("labels not closed"); next }
    }
    rest = substr(rest, 2)
  }
  if (substr(rest, 1, 1) != " ") { fail("no space before the value"); next }
  rest = substr(rest, 2)
  if (rest ~ / /) fail("a timestamp or extra field after the value")
  if (rest !~ value_re) fail("bad value " rest)

  family = sample
  if (!(family in type)) {
    base = sample
    sub(/_(bucket|sum|count)$/, "", base)
    if (base in type && type[base] == "histogram") family = base
  }
  if (!(family in type)) { fail("sample without TYPE"); next }
  if (family != current) fail("sample outside its family")
  seen[family SUBSEP "sampled"] = 1
  if (type[family] == "histogram" && sample == family) fail("histogram sample without a suffix")
  if (sample ~ /_bucket$/ && type[family] == "histogram") {
    if (labels !~ /(^|,)le="/) fail("bucket without le")
    if (labels ~ /le="\+Inf"/) { key = labels; sub(/le="[^"]*",?/, "", key); inf[family SUBSEP key] = 1 }
    else { key = labels; sub(/le="[^"]*",?/, "", key); need[family SUBSEP key] = NR }
  }
  if ((sample SUBSEP labels) in series) fail("duplicate series")
  series[sample SUBSEP labels] = 1
}

END {
  for (k in need) if (!(k in inf)) { printf "line %d: histogram series without an le=\"+Inf\" bucket\n", need[k]; bad = 1 }
  exit bad
}
