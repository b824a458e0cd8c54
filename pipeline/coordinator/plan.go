package coordinator

import (
	"context"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/sharding"
	"blipflow/storage"
)

// planned counts what planAndPublish did.
type planned struct {
	// items counts the listed items kept (images, or tars).
	items                 int
	shards, images        int
	published, duplicates int
	took                  time.Duration
}

// planAndPublish lists the input, cuts it into shards and publishes those
// not finished yet. A sorted listing (an S3 prefix, a folder) is cut and
// published as it is listed (S3 pages of 1000 keys), holding one shard of
// items at a time; other inputs (manifests, tars) are collected, sorted
// and cut whole. first sees the first item kept before anything is
// published.
func (c *Coordinator) planAndPublish(ctx context.Context, input sharding.Input, req Request, job string, output storage.Store, first func(sharding.Item) error) (planned, error) {
	start := time.Now()
	var p planned
	states, err := c.cfg.Jobs.Shards(ctx, job)
	if err != nil {
		return p, err
	}
	publish := func(shard sharding.Shard) error {
		p.shards++
		p.images += len(shard.Keys)
		if st, ok := states[shard.ID]; ok && (st.State == jobstate.StateDone || st.State == jobstate.StateFailed) {
			return nil
		}
		task, err := c.shardTask(ctx, output, job, shard)
		if err != nil {
			return err
		}
		dup, err := c.cfg.Queue.Publish(ctx, task)
		if err != nil {
			return err
		}
		if dup {
			p.duplicates++
			c.cfg.Metrics.Duplicates.Inc()
		} else {
			p.published++
			c.cfg.Metrics.Published.Inc()
		}
		return nil
	}
	keep := sharding.KeepFunc(input, req.Filter)
	count := func(item sharding.Item) (bool, error) {
		if !keep(item) {
			c.cfg.Metrics.ListItems.WithLabelValues("skipped").Inc()
			return false, nil
		}
		c.cfg.Metrics.ListItems.WithLabelValues("kept").Inc()
		p.items++
		if p.items == 1 {
			if err := first(item); err != nil {
				return false, err
			}
		}
		return true, nil
	}

	if _, ok := input.(sharding.Sorted); ok {
		cut, err := sharding.NewCutter(req.ShardSize, publish)
		if err != nil {
			return p, err
		}
		err = input.List(ctx, func(item sharding.Item) error {
			if kept, err := count(item); !kept || err != nil {
				return err
			}
			return cut.Add(item)
		})
		if err == nil {
			err = cut.Close()
		}
		p.took = time.Since(start)
		return p, err
	}

	var items []sharding.Item
	err = input.List(ctx, func(item sharding.Item) error {
		kept, err := count(item)
		if kept {
			items = append(items, item)
		}
		return err
	})
	if err != nil {
		return p, err
	}
	shards, err := sharding.PlanInput(input, items, req.ShardSize)
	if err != nil {
		return p, err
	}
	items = nil
	c.cfg.Log.Info("input listed", "input", input.URL(), "images", sharding.KnownImages(shards), "shards", len(shards),
		"took", time.Since(start).Round(time.Millisecond).String())
	for _, shard := range shards {
		if err := publish(shard); err != nil {
			return p, err
		}
	}
	p.took = time.Since(start)
	return p, nil
}
