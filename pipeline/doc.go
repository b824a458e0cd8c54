// Package pipeline holds what the distributed batch pipeline's parts share:
// the Model interface the worker drives, the Task it runs, a NopModel for
// plumbing tests and benchmarks, and the hook that loads a model by name.
//
// The moving parts live in sub-packages, each with one job: queue (JetStream
// streams, consumers and shard messages), jobstate (job and shard state in
// JetStream KV), worker (pull, read, decode, batch, run, write, ack),
// coordinator (list, shard, publish, follow, manifest), metrics (Prometheus
// and health endpoints) and natsembed (the in-process NATS server of local
// mode and tests).
package pipeline
