// Drive the kafka-rest npm client (Confluent's, API v1), unmodified,
// against parley: join a group (binary format, from the beginning),
// stream the topic (GET .../instances/{name}/topics/{topic}), commit,
// shut down (DELETE the instance).
//
// Usage: node kafkarest_drive.js BASE_URL TOPIC N
"use strict";
var KafkaRest = require("kafka-rest");
var url = process.argv[2], topic = process.argv[3], n = parseInt(process.argv[4], 10);
var kafka = new KafkaRest({ url: url });
var timer = setTimeout(function () { fail("timed out"); }, 60000);
function fail(msg) { console.error("kafka-rest: " + msg); process.exit(1); }

kafka.consumer("kafkarest-compat").join({ format: "binary", "auto.offset.reset": "smallest", "auto.commit.enable": "false" }, function (err, ci) {
    if (err) return fail("join: " + err);
    var seen = [];
    var stream = ci.subscribe(topic);
    var done = false;
    stream.on("data", function (msgs) {
        msgs.forEach(function (m) {
            var ev = JSON.parse(m.value.toString("utf8"));
            if (!ev.event) fail("value is not an event: " + m.value);
            seen.push(m.offset);
        });
        if (seen.length >= n && !done) {
            done = true;
            ci.commit(function (err) {
                if (err) return fail("commit: " + err);
                ci.shutdown(function (err) {
                    if (err) return fail("shutdown: " + err);
                    clearTimeout(timer);
                    console.log(JSON.stringify({ client: "kafka-rest", records: seen.length, ok: true }));
                });
            });
        }
    });
    stream.on("error", function (err) { fail("stream: " + err); });
});
