// Package metrics defines the pipeline's Prometheus metrics and serves
// them with the /healthz and /readyz probes. Each binary registers its
// metrics on its own registry (no global state).
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Stage names for Worker.StageSeconds.
const (
	StageRead       = "read"
	StageDecode     = "decode"
	StagePreprocess = "preprocess"
	StageModel      = "model"
	StageWrite      = "write"
	StageShard      = "shard"
)

// Worker holds the worker's metrics.
type Worker struct {
	Images        *prometheus.CounterVec   // images processed, by result (ok, error)
	BytesRead     prometheus.Counter       // image bytes read
	Shards        *prometheus.CounterVec   // shard outcomes (done, retry, dead, handed_back)
	BatchSize     prometheus.Histogram     // images per model call
	StageSeconds  *prometheus.HistogramVec // latency per stage
	QueueWaiting  prometheus.Gauge         // shards waiting in the queue
	QueueInFlight prometheus.Gauge         // shards delivered, not yet acknowledged
	InFlight      prometheus.Gauge         // shards this worker holds
	DecodeBytes   prometheus.Gauge         // decode budget in use, bytes
}

// NewWorker creates the worker metrics and registers them (and the Go and
// process collectors) on reg.
func NewWorker(reg prometheus.Registerer) *Worker {
	m := &Worker{
		Images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blipflow_worker_images_total", Help: "Images processed, by result (ok or error row).",
		}, []string{"result"}),
		BytesRead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blipflow_worker_read_bytes_total", Help: "Image bytes read from the input store.",
		}),
		Shards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blipflow_worker_shards_total", Help: "Shard deliveries, by outcome (done, retry, dead, handed_back).",
		}, []string{"outcome"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "blipflow_worker_batch_size", Help: "Images per model call.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		StageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "blipflow_worker_stage_seconds", Help: "Latency of each stage (read, decode, preprocess per image; model per batch; write, shard per shard).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12),
		}, []string{"stage"}),
		QueueWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_queue_waiting_shards", Help: "Shards waiting in the queue (consumer lag).",
		}),
		QueueInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_queue_inflight_shards", Help: "Shards delivered to some worker and not yet acknowledged.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_worker_inflight_shards", Help: "Shards this worker is processing.",
		}),
		DecodeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_worker_decode_bytes", Help: "Bytes of the decode budget held by images being decoded (by their header's decode cost).",
		}),
	}
	reg.MustRegister(m.Images, m.BytesRead, m.Shards, m.BatchSize, m.StageSeconds,
		m.QueueWaiting, m.QueueInFlight, m.InFlight, m.DecodeBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Coordinator holds the coordinator's metrics.
type Coordinator struct {
	Published  prometheus.Counter     // shards published (not duplicates)
	Duplicates prometheus.Counter     // publishes the stream dropped as duplicates
	JobShards  *prometheus.GaugeVec   // shards of the followed job, by state
	JobImages  *prometheus.GaugeVec   // images of the followed job: planned, done
	QueueDepth prometheus.Gauge       // shards waiting in the queue
	ListItems  *prometheus.CounterVec // listed input objects, by verdict (kept, skipped)
}

// NewCoordinator creates the coordinator metrics and registers them (and
// the Go and process collectors) on reg.
func NewCoordinator(reg prometheus.Registerer) *Coordinator {
	m := &Coordinator{
		Published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blipflow_coordinator_published_shards_total", Help: "Shards published to the queue.",
		}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blipflow_coordinator_duplicate_shards_total", Help: "Shard publishes dropped by the stream as duplicates.",
		}),
		JobShards: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "blipflow_job_shards", Help: "Shards of the job, by state (total, done, failed, retrying).",
		}, []string{"job", "state"}),
		JobImages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "blipflow_job_images", Help: "Images of the job (total, done, error).",
		}, []string{"job", "state"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_queue_waiting_shards", Help: "Shards waiting in the queue (consumer lag).",
		}),
		ListItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "blipflow_coordinator_listed_objects_total", Help: "Input objects listed, by verdict (kept, skipped).",
		}, []string{"verdict"}),
	}
	reg.MustRegister(m.Published, m.Duplicates, m.JobShards, m.JobImages, m.QueueDepth, m.ListItems,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
