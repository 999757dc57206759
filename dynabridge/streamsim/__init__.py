"""A DynamoDB Streams simulator for tests and benchmarks (docs/testing.md).

An HTTP server that speaks the DynamoDB Streams API as AWS does (shards that rotate and split
by hash range, throttling, latency, iterator expiry, trimming, lagging listings), passes
DynamoDB calls to moto and copies moto tables' changes into its own shard tree, and generates
changes of synthetic tables itself. No process imports it: it is test and benchmark kit.

  hashing, config, model,    the pure shard tree (ranges, rotation, splits, trimming, listings)
  shard                      and one shard's records, read by position
  records, iterators         record JSON and item sizes; stateless iterator tokens
  world                      tables, streams, locks; the one way changes enter a stream
  streams_api, tables_api    the two AWS APIs; errors: AWS's error bodies
  feed, moto                 moto's stream copied in; requests passed to moto
  synthetic, generator       synthetic items, the oracle state, the paced generator, backlogs
  control, server, cli       the /_sim control API, the HTTP server, the command
  client                     SimClient, the typed client of the control API
"""
