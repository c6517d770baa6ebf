package consumer

import (
	"net/http"
)

// keyFrom says where a route finds the consumer instance it acts on.
type keyFrom int

const (
	keyNone    keyFrom = iota
	keyHeaders         // Mix: the consumer-group and consumer-name headers
	keyPath            // Confluent: /consumers/{group}/instances/{name}
	keyGroup           // Confluent create: /consumers/{group}, name in the body
)

// route is one endpoint. The table below is the single source of both the
// ServeMux patterns and the OpenAPI document, so that the two cannot
// disagree (TestOpenAPIMatchesRoutes checks the result as well).
type route struct {
	method, path string
	op           string // OpenAPI operationId and the metrics endpoint label
	summary      string
	tag          string
	key          keyFrom
	create       bool // makes the instance rather than acting on one
	read         bool // reads records: rate limited per instance
	public       bool // no token needed
	query        []string
	headers      []string
	body         string // request body schema, "" for none
	bodyRequired bool
	okStatus     int
	okSchema     string // response schema, "" for no content
	okType       string // response content type, default application/json
	ndjson       bool   // also answers Accept: application/x-ndjson
	errors       []int
	serve        func(h *Handler, w http.ResponseWriter, r *http.Request, rc *reqCtx) error
}

const (
	tagMix       = "Mix consumer API"
	tagConfluent = "Confluent REST Proxy v2"
	tagAuth      = "Authorization"
	tagMeta      = "API description"
)

// Errors every authenticated route can return.
var commonErrors = []int{401, 403, 429}

// instanceErrors are the errors of routes acting on an instance.
var instanceErrors = append([]int{404}, commonErrors...)

func routes() []route {
	rs := []route{
		{method: "POST", path: "/oauth2/token", op: "token", tag: tagAuth, public: true,
			summary: "Get an access token (OAuth2 client credentials grant)",
			body:    "TokenRequest", bodyRequired: true, okStatus: 200, okSchema: "Token",
			errors: []int{400, 401, 429}, serve: (*Handler).token},
		{method: "GET", path: "/openapi.json", op: "openapi", tag: tagMeta, public: true,
			summary:  "This OpenAPI document",
			okStatus: 200, okSchema: "OpenAPI", serve: (*Handler).openAPI},

		// Mix: the topic comes from the token (or ?topic=), the instance
		// from headers.
		{method: "GET", path: "/partitions", op: "getPartitions", tag: tagMix,
			summary: "List the partitions of the token's topic (or ?topic=)",
			query:   []string{"topic"}, okStatus: 200, okSchema: "TopicPartitions",
			errors: append([]int{404}, commonErrors...), serve: (*Handler).partitions},
		{method: "GET", path: "/partitions/{partition}/offsets", op: "getPartitionOffsets", tag: tagMix,
			summary: "Get the first and next offsets of a partition",
			query:   []string{"topic"}, okStatus: 200, okSchema: "PartitionOffsets",
			errors: append([]int{404, 422}, commonErrors...), serve: (*Handler).partitionOffsets},
		{method: "POST", path: "/consumers", op: "createConsumer", tag: tagMix, key: keyHeaders, create: true,
			summary: "Create a consumer instance",
			body:    "ConsumerConfig", okStatus: 204,
			errors: append([]int{409, 422}, commonErrors...), serve: (*Handler).createMix},
		{method: "DELETE", path: "/consumers", op: "deleteConsumer", tag: tagMix, key: keyHeaders,
			summary: "Delete a consumer instance", okStatus: 204,
			errors: instanceErrors, serve: (*Handler).deleteConsumer},
		{method: "POST", path: "/consumers/subscription", op: "subscribe", tag: tagMix, key: keyHeaders,
			summary: "Subscribe to topics (partitions are assigned by the group)",
			body:    "Topics", bodyRequired: true, okStatus: 204,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).subscribe},
		{method: "GET", path: "/consumers/subscription", op: "getSubscription", tag: tagMix, key: keyHeaders,
			summary: "Get the subscribed topics", okStatus: 200, okSchema: "Topics",
			errors: instanceErrors, serve: (*Handler).subscription},
		{method: "DELETE", path: "/consumers/subscription", op: "unsubscribe", tag: tagMix, key: keyHeaders,
			summary: "Unsubscribe from all topics", okStatus: 204,
			errors: instanceErrors, serve: (*Handler).unsubscribe},
		{method: "POST", path: "/consumers/assignments", op: "assign", tag: tagMix, key: keyHeaders,
			summary: "Assign partitions manually",
			body:    "Partitions", bodyRequired: true, okStatus: 204,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).assign},
		{method: "GET", path: "/consumers/assignments", op: "getAssignments", tag: tagMix, key: keyHeaders,
			summary: "Get the partitions the consumer reads", okStatus: 200, okSchema: "Partitions",
			errors: instanceErrors, serve: (*Handler).assignments},
		{method: "GET", path: "/consumers/records", op: "getRecords", tag: tagMix, key: keyHeaders,
			summary: "Read records, waiting up to ?timeout= ms for some to arrive",
			query:   []string{"timeout", "max_bytes", "data"}, okStatus: 200, okSchema: "Records", ndjson: true, read: true,
			errors: append([]int{406, 409, 422}, instanceErrors...), serve: (*Handler).records},
		{method: "GET", path: "/consumers/records/stream", op: "streamRecords", tag: tagMix, key: keyHeaders,
			summary: "Stream records as Server-Sent Events (resume with Last-Event-ID)",
			query:   []string{"data"}, headers: []string{"Last-Event-ID"}, okStatus: 200, okSchema: "EventStream", okType: "text/event-stream", read: true,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).stream},
		{method: "POST", path: "/consumers/offsets", op: "commitOffsets", tag: tagMix, key: keyHeaders,
			summary: "Commit offsets (each the offset of the last record processed); no body commits everything read",
			body:    "Offsets", okStatus: 204,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).commit},
		{method: "POST", path: "/consumers/committed/offsets", op: "getCommittedOffsets", tag: tagMix, key: keyHeaders,
			summary: "Get the group's committed offsets (each the next offset to read)",
			body:    "Partitions", bodyRequired: true, okStatus: 200, okSchema: "Offsets",
			errors: append([]int{422}, instanceErrors...), serve: (*Handler).committed},
		{method: "POST", path: "/consumers/positions", op: "seek", tag: tagMix, key: keyHeaders,
			summary: "Set the next offset to read in partitions",
			body:    "Offsets", bodyRequired: true, okStatus: 204,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).seek},
		{method: "POST", path: "/consumers/positions/beginning", op: "seekToBeginning", tag: tagMix, key: keyHeaders,
			summary: "Read partitions from their first offset",
			body:    "Partitions", bodyRequired: true, okStatus: 204,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).seekBeginning},
		{method: "POST", path: "/consumers/positions/end", op: "seekToEnd", tag: tagMix, key: keyHeaders,
			summary: "Read only records written from now on",
			body:    "Partitions", bodyRequired: true, okStatus: 204,
			errors: append([]int{409, 422}, instanceErrors...), serve: (*Handler).seekEnd},

		// Confluent REST Proxy v2: the instance is in the path.
		{method: "POST", path: "/consumers/{group}", op: "confluentCreateConsumer", tag: tagConfluent, key: keyGroup, create: true,
			summary: "Create a consumer instance in a group",
			body:    "ConfluentConsumerConfig", okStatus: 200, okSchema: "CreatedConsumer",
			errors: append([]int{409, 422}, commonErrors...), serve: (*Handler).createConfluent},
		{method: "GET", path: "/topics", op: "confluentListTopics", tag: tagConfluent,
			summary:  "List the topics the token may read",
			okStatus: 200, okSchema: "TopicNames", errors: commonErrors, serve: (*Handler).listTopics},
		{method: "GET", path: "/topics/{topic}", op: "confluentGetTopic", tag: tagConfluent,
			summary:  "Describe a topic (its partitions)",
			okStatus: 200, okSchema: "Topic", errors: append([]int{404}, commonErrors...), serve: (*Handler).getTopic},
		{method: "GET", path: "/topics/{topic}/partitions", op: "confluentGetTopicPartitions", tag: tagConfluent,
			summary:  "List a topic's partitions",
			okStatus: 200, okSchema: "PartitionInfos", errors: append([]int{404}, commonErrors...), serve: (*Handler).getTopicPartitions},
		{method: "GET", path: "/topics/{topic}/partitions/{partition}/offsets", op: "confluentGetTopicPartitionOffsets", tag: tagConfluent,
			summary:  "Get the first and next offsets of a partition",
			okStatus: 200, okSchema: "PartitionOffsets", errors: append([]int{404, 422}, commonErrors...), serve: (*Handler).getTopicPartitionOffsets},
		{method: "GET", path: "/consumers/{group}/instances/{name}/topics/{topic}", op: "confluentV1ReadTopic", tag: tagConfluent, key: keyPath,
			summary: "Confluent v1: subscribe to the topic if not yet, and read records (binary by default)",
			query:   []string{"max_bytes"}, okStatus: 200, okSchema: "Records", read: true,
			errors: append([]int{404, 406, 409, 422}, commonErrors...), serve: (*Handler).records},
	}
	base := "/consumers/{group}/instances/{name}"
	for _, r := range rs {
		if r.tag != tagMix || r.key != keyHeaders || r.create {
			continue
		}
		c := r
		c.tag = tagConfluent
		c.key = keyPath
		c.op = "confluent" + upperFirst(r.op)
		switch r.path {
		case "/consumers":
			c.path = base
		case "/consumers/committed/offsets":
			// Confluent reads committed offsets with GET and a body.
			c.method, c.path = "GET", base+"/offsets"
		default:
			c.path = base + r.path[len("/consumers"):]
		}
		if r.op == "commitOffsets" {
			c.okStatus, c.okSchema = 200, "EmptyList"
		}
		rs = append(rs, c)
	}
	return rs
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// pattern is the route's ServeMux pattern.
func (r route) pattern() string { return r.method + " " + r.path }
