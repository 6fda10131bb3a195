#!/usr/bin/env node
// consume.js - a third-party consumer of the decision topic: kafkajs reads the
// topic and @kafkajs/confluent-schema-registry decodes every value through a
// Confluent-compatible schema registry (the decision API's read-only
// endpoints), fetching each schema by the id in the value's Confluent header.
// Neither shares any code with this project; LZ4 batches (the stream
// processor's default compression) are inflated by kafkajs-lz4.
//
//   node consume.js BROKERS TOPIC REGISTRY_URL EXPECTED TIMEOUT_MS
//
// BROKERS is a comma-separated bootstrap list. Reads TOPIC from the beginning
// under a fresh consumer group and prints one JSON line per record:
//   {"partition", "offset", "key", "schema_id", "decision": <decoded record>}
// Exits 0 once EXPECTED records were printed, 1 on timeout or on any error
// (a record that does not decode, a broker that cannot be used), with the
// reason on standard error. KAFKAJS_DEBUG=1 turns kafkajs's own logging up.
'use strict';

const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require('kafkajs');
const LZ4Codec = require('kafkajs-lz4');
const { SchemaRegistry } = require('@kafkajs/confluent-schema-registry');

CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;

function usage() {
  process.stderr.write('usage: consume.js BROKERS TOPIC REGISTRY_URL EXPECTED TIMEOUT_MS\n');
  process.exit(2);
}

const [brokersArg, topic, registryUrl, expectedArg, timeoutArg] = process.argv.slice(2);
if (!brokersArg || !topic || !registryUrl || expectedArg === undefined || timeoutArg === undefined) usage();
const expected = Number(expectedArg);
const timeoutMs = Number(timeoutArg);
if (!Number.isInteger(expected) || expected < 0 || !Number.isFinite(timeoutMs) || timeoutMs <= 0) usage();

const kafka = new Kafka({
  clientId: 'thirdparty-consume-js',
  brokers: brokersArg.split(','),
  logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.ERROR,
  retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
});
const registry = new SchemaRegistry({ host: registryUrl });
const groupId = `thirdparty-${process.pid}-${Date.now()}`;
const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });

let seen = 0;
let finished = false;

// Leaves with status code after a bounded attempt to leave the group.
async function finish(code, why) {
  if (finished) return;
  finished = true;
  if (why) process.stderr.write(`consume.js: ${why}\n`);
  const stop = setTimeout(() => process.exit(code), 5000);
  try {
    await consumer.disconnect();
  } catch (e) {
    // leaving is best effort: the answer is already decided
  }
  clearTimeout(stop);
  process.exit(code);
}

const timer = setTimeout(() => finish(1, `timeout after ${timeoutMs} ms: ${seen} of ${expected} records`), timeoutMs);

consumer.on(consumer.events.CRASH, (e) => finish(1, `consumer crashed: ${e.payload && e.payload.error}`));

async function main() {
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  if (expected === 0) {
    clearTimeout(timer);
    return finish(0);
  }
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (finished) return;
      const where = `partition ${partition} offset ${message.offset}`;
      const value = message.value;
      if (!value || value.length < 5 || value[0] !== 0) {
        return finish(1, `${where}: not in the Confluent wire format`);
      }
      let decision;
      try {
        decision = await registry.decode(value);
      } catch (e) {
        return finish(1, `${where}: decode failed: ${e && e.stack ? e.stack : e}`);
      }
      const line = {
        partition,
        offset: message.offset,
        key: message.key === null ? null : message.key.toString('utf8'),
        schema_id: value.readInt32BE(1),
        decision,
      };
      process.stdout.write(JSON.stringify(line) + '\n');
      if (++seen >= expected) {
        clearTimeout(timer);
        return finish(0);
      }
    },
  });
}

main().catch((e) => finish(1, `${e && e.stack ? e.stack : e}`));
