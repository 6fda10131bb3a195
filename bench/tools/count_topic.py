#!/usr/bin/python3
"""Prints the number of records produced to a topic (sum of end offsets over
its partitions), read with kafka-python; with --retained, the number still
held (end minus beginning offsets: the mock cluster keeps a bounded log per
partition, about the last 125,000 messages here, and drops older ones).
usage: count_topic.py [--retained] BOOTSTRAP TOPIC"""
import sys

from kafka import KafkaConsumer, TopicPartition

retained = sys.argv[1] == "--retained"
bootstrap, topic = sys.argv[-2], sys.argv[-1]
c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or set()]
total = sum(c.end_offsets(tps).values()) if tps else 0
if retained and tps:
    total -= sum(c.beginning_offsets(tps).values())
print(total)
