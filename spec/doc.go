// Package spec is jmapd's executable conformance suite: JSON scenarios in
// testdata/<rfc>/, each asserting what one RFC section says, run by
// TestScenarios against a fresh in-process jmapd (jmaptest.Start) or, with
// -session-url URL -user EMAIL:PASSWORD [-user2 EMAIL:PASSWORD], against
// any JMAP server.
//
// # Scenario files
//
//	{
//	  "name": "what the scenario shows",
//	  "section": "RFC 8620 §3.6.1",
//	  "description": "the rule, in the RFC's words where possible",
//	  "requires": ["urn:jmapd:params:jmap:test"],
//	  "knownFailure": "why jmapd fails it today",
//	  "steps": [ ... ]
//	}
//
// "requires" lists capabilities beyond the core one the scenario needs.
// Every scenario runs against the in-process server. Against a foreign
// server a scenario is skipped when the server does not advertise one of
// them, and always when one is jmapd's own (urn:jmapd:...): those
// scenarios count on a fresh account, which they get only in-process.
// A foreign run makes a few failed logins on purpose (the 401 scenarios);
// a server that throttles them may refuse a second run within its window.
//
// "knownFailure" marks a scenario that jmapd fails because jmapd is wrong
// by the RFC text: the runner still fails it, saying why, unless
// SPEC_ALLOW_KNOWN=1 is set, which turns the failure into a log line and
// makes a marked scenario that passes fail, so that the mark goes once
// the server is fixed.
//
// # Steps
//
// A step is an API request or a raw HTTP exchange, and an expectation:
//
//	{"request": {"using": [...], "methodCalls": [...]},
//	 "expect": {"methodResponses": [...], "createdIds": {...}}}
//
//	{"http": {"method": "POST", "path": "$session:uploadUrl",
//	          "vars": {"accountId": "$account"}, "body": "raw text",
//	          "headers": {"Content-Type": "text/plain"}, "auth": "user"},
//	 "expect": {"status": [200, 201], "headers": {...}, "body": {...}}}
//
// A request is POSTed as application/json to the acting user's apiUrl.
// Its expectation is either "body" (the whole Response object) or
// "methodResponses" (and "createdIds" when the request passes one), which
// stands for {"methodResponses": ..., "createdIds": ..., "sessionState":
// "$state"}. "status" defaults to 200; a 200 answer to a request must be
// application/json.
//
// An http step's "path" is "$sessionUrl", "$session:apiUrl" (or
// uploadUrl, downloadUrl, eventSourceUrl: a URL template of the session,
// expanded with "vars" as RFC 6570 level 1 does), or "/path" on the
// server's origin. The body is "body" (a string), "bodyBase64" (bytes
// that need not be UTF-8) or "json" (a template like a request). "auth"
// is "user" (default: the acting user's Basic credentials), "none" or
// "wrong" (the right user, a wrong password). The expectation may give
// "status" (a number or a list of acceptable numbers), "headers" (each
// a string expectation one of the header's values must meet, or
// "$absent"), and one of "body" (JSON), "bodyText" (the exact octets as a
// string) or "bodyBase64" (the exact octets in base64).
//
// "as": "user2" runs a step as a second user (created on demand
// in-process; -user2 on a foreign server, else the scenario is skipped).
// "comment" and "section" (overriding the scenario's) annotate a step.
//
// # Placeholders in requests
//
// A whole string "$account" is the account id of the user the step acts
// as ("$account:user1", "$account:user2" name one), "$username" that
// user's login name and "$ref:NAME" a value captured before, of any JSON
// type. Inside longer strings, and in paths, bodies and headers,
// "${account}", "${ref:NAME}" and the like are spliced in. A leading "$$"
// stands for a literal "$". Object member names take placeholders too (an
// update keyed by "$ref:note"); member order is kept as written.
//
// An array element {"$repeat": N, "$plus": K, "$item": X} becomes N+K
// copies of X with "${i}" replaced by 0, 1, ...; N may be "$ref:NAME"
// (e.g. a limit captured from the session). This works in expectations too.
//
// # Expectations
//
// Matching is strict: objects must have exactly the expected members and
// arrays the expected elements in order, because the RFCs define the
// shape of every answer. Loosen it only where the RFC does:
//
//	"$partial": true        the object may have other members
//	"?name": X              the member may be absent; if present, it matches X
//	"name": "$absent"       the member must not be present
//	["$unordered", A, B]    the elements in any order
//	{"$anyOf": [X, Y]}      matches X or Y; {"$allOf": [X, Y]} both
//
// String placeholders:
//
//	"$any"                  any value; "$string", "$bool", "$number",
//	                        "$object", "$array" any value of that type
//	"$id"                   an Id (RFC 8620 §1.2)
//	"$state"                a non-empty string
//	"$int", "$uint"         an Int or UnsignedInt (RFC 8620 §1.3)
//	"$date", "$utcdate"     a Date or UTCDate (RFC 8620 §1.4)
//	"$id:NAME"              any type placeholder, capturing the value as NAME
//	"$capture:NAME"         any value, captured as NAME
//	"$ref:NAME"             equal to the value captured as NAME
//	"$notRef:NAME"          different from it (a state that must change)
//	"$account", "$username" the user's account id and login name
//	"$httpStatus"           the HTTP status of this answer (RFC 7807 "status")
//	"$gte:N"                a number of at least N
//	"$contains:TEXT"        a string containing TEXT
//	"$regex:RE"             a string matching the Go regular expression RE
//	"$$text"                the literal string "$text"
//
// Captures are taken in the order the expectation lists them, so a value
// captured early in a response can be referred to later in the same one.
// A mismatch is reported with its JSON path ($.methodResponses[0][1].id),
// the scenario file, the step and its RFC section. Every JSON answer must
// also be I-JSON (RFC 8620 §1.5): no duplicate member names, only UTF-8.
package spec
