#!/usr/bin/python3
"""Prints the number of records in a topic (sum of end offsets over its
partitions), read with kafka-python. usage: count_topic.py BOOTSTRAP TOPIC"""
import sys

from kafka import KafkaConsumer, TopicPartition

c = KafkaConsumer(bootstrap_servers=sys.argv[1], group_id=None)
parts = c.partitions_for_topic(sys.argv[2]) or set()
tps = [TopicPartition(sys.argv[2], p) for p in parts]
print(sum(c.end_offsets(tps).values()) if tps else 0)
