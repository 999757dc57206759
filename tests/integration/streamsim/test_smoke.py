"""The simulator fixture end to end: a moto table's writes read back through boto3 from the
simulated shards, and a synthetic table's generated changes equal to its oracle."""

from __future__ import annotations

from tests.polling import wait_for
from tests.streamsim import SimTables


def test_moto_writes_are_dealt_into_the_simulated_shards(sim_tables: SimTables) -> None:
    table = sim_tables.moto_table(shards=4)
    for i in range(40):
        table.dynamodb.put_item(
            TableName=table.name, Item={"pk": {"S": f"k{i}"}, "sk": {"N": "1"}, "v": {"N": str(i)}}
        )
    wait_for(
        lambda: len(sim_tables.sim.records(table.name)) == 40, 20, "40 records in the simulator"
    )
    shards = table.streams.describe_stream(StreamArn=table.stream_arn)["StreamDescription"]
    assert len(shards["Shards"]) == 4
    seen = []
    for shard in shards["Shards"]:
        iterator = table.streams.get_shard_iterator(
            StreamArn=table.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        page = table.streams.get_records(ShardIterator=iterator)
        seen += [r["dynamodb"]["NewImage"]["pk"]["S"] for r in page["Records"]]
    assert sorted(seen) == sorted(f"k{i}" for i in range(40))
