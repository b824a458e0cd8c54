package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Device holds the metrics of the device the model runs on: decode batch
// occupancy under continuous batching, out-of-memory shrinks and, on a GPU,
// its memory.
type Device struct {
	BatchRows     prometheus.Gauge     // rows in the last decode step
	BatchCapacity prometheus.Gauge     // decode batch size (after shrinks)
	Occupancy     prometheus.Histogram // rows ÷ capacity per decode step
	WaitingImages *prometheus.GaugeVec // images queued for the encoder, or encoded and waiting for a slot
	Shrinks       prometheus.Counter   // batch reductions after running out of memory

	mu      sync.Mutex
	shrinks int
}

// MemInfo reports a device's free and total memory in bytes.
type MemInfo func() (free, total uint64, err error)

// NewDevice creates the device metrics and registers them on reg. When mem
// is not nil, blipflow_device_memory_bytes{kind="free"|"total"|"used"} is
// read from it at each scrape.
func NewDevice(reg prometheus.Registerer, device string, mem MemInfo) *Device {
	labels := prometheus.Labels{"device": device}
	m := &Device{
		BatchRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_device_batch_rows", Help: "Rows in the last decode step.", ConstLabels: labels,
		}),
		BatchCapacity: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "blipflow_device_batch_capacity", Help: "Decode batch size (rows), after any out-of-memory shrink.", ConstLabels: labels,
		}),
		Occupancy: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "blipflow_device_batch_occupancy", Help: "Fraction of the decode batch in use, per decode step.", ConstLabels: labels,
			Buckets: []float64{0.125, 0.25, 0.5, 0.75, 0.9, 1},
		}),
		WaitingImages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "blipflow_device_waiting_images", Help: "Images waiting: queued for the encoder, or encoded and waiting for a decode slot.", ConstLabels: labels,
		}, []string{"stage"}),
		Shrinks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "blipflow_device_oom_shrinks_total", Help: "Batch reductions after the device ran out of memory.", ConstLabels: labels,
		}),
	}
	reg.MustRegister(m.BatchRows, m.BatchCapacity, m.Occupancy, m.WaitingImages, m.Shrinks)
	if mem != nil {
		reg.MustRegister(&memCollector{mem: mem, desc: prometheus.NewDesc("blipflow_device_memory_bytes",
			"Device memory in bytes, by kind (free, used, total).", []string{"kind"}, labels)})
	}
	return m
}

// ObserveStep records one decode step: rows run, the batch's size, the
// waiting images and the total number of shrinks so far.
func (m *Device) ObserveStep(rows, capacity, queued, encoded, shrinks int) {
	m.BatchRows.Set(float64(rows))
	m.BatchCapacity.Set(float64(capacity))
	if capacity > 0 {
		m.Occupancy.Observe(float64(rows) / float64(capacity))
	}
	m.WaitingImages.WithLabelValues("queued").Set(float64(queued))
	m.WaitingImages.WithLabelValues("encoded").Set(float64(encoded))
	m.shrinkTo(shrinks)
}

// shrinkTo raises the shrink counter to total (the scheduler counts them).
func (m *Device) shrinkTo(total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if total > m.shrinks {
		m.Shrinks.Add(float64(total - m.shrinks))
		m.shrinks = total
	}
}

type memCollector struct {
	mem  MemInfo
	desc *prometheus.Desc
}

func (c *memCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *memCollector) Collect(ch chan<- prometheus.Metric) {
	free, total, err := c.mem()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(free), "free")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(total), "total")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(total-free), "used")
}
