package audit

import (
	"context"
	"io"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// benchEvents is the size of the chain the benchmarks run against.
const benchEvents = 1_000_000

// heapSampler records the largest live heap seen while it runs, reading
// runtime/metrics (which does not stop the world) every few milliseconds.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := heapBytes(); v > h.peak {
				h.peak = v
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkAudit seeds one chain of a million events per database, then
// measures each export format over the whole chain (time, output size, peak
// live heap) and the viewer's first and 10,000th keyset page.
func BenchmarkAudit(b *testing.B) {
	for _, d := range modelstest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := modelstest.Open(b, d)
			f := newFixture(b, db, "bench-county")
			start := time.Now()
			seedEvents(b, db, f.agency.ID, benchEvents, seedStart, 30*time.Second, genEvent)
			b.Logf("%s: seeded %d events in %s", d, benchEvents, time.Since(start).Round(time.Second))
			ctx := context.Background()
			x := NewExporter(f.store, f.rec, func() time.Time { return f.now })

			for _, format := range []Format{FormatCSV, FormatJSONL, FormatPDF} {
				b.Run("export_"+string(format), func(b *testing.B) {
					var peak, base uint64
					var out int64
					for i := 0; i < b.N; i++ {
						runtime.GC()
						base = heapBytes()
						hs := startHeapSampler()
						ex, err := x.Start(ctx, ExportRequest{Agency: f.agency, Format: format, Actor: Actor{Type: ActorSystem, ID: "bench"}})
						if err != nil {
							b.Fatal(err)
						}
						w := &countWriter{}
						n, err := ex.WriteTo(ctx, w)
						if err != nil {
							b.Fatal(err)
						}
						if n < benchEvents {
							b.Fatalf("exported %d records, want at least %d", n, benchEvents)
						}
						peak, out = max(peak, hs.Stop()), w.n
					}
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
					b.ReportMetric(float64(peak-min(base, peak))/(1<<20), "heap-growth-MB")
					b.ReportMetric(float64(out)/(1<<20), "output-MB")
				})
			}

			newest, err := f.store.Page(ctx, models.AuditFilter{AgencyID: f.agency.ID}, 1)
			if err != nil {
				b.Fatal(err)
			}
			for _, pg := range []int64{1, 10_000} {
				b.Run("viewer_page_"+strconv.FormatInt(pg, 10), func(b *testing.B) {
					// Seeded ids are dense, so the cursor of page pg is known;
					// the viewer reaches it by following Older links.
					var before int64
					if pg > 1 {
						before = newest[0].ID - 50*(pg-1) + 1
					}
					for i := 0; i < b.N; i++ {
						page, err := f.store.Page(ctx, models.AuditFilter{AgencyID: f.agency.ID, BeforeID: before}, 51)
						if err != nil || len(page) != 51 {
							b.Fatalf("page %d: %d events, %v", pg, len(page), err)
						}
						if before > 0 {
							if page[0].ID != before-1 {
								b.Fatalf("page %d starts at id %d, want %d", pg, page[0].ID, before-1)
							}
							probe, err := f.store.Ascending(ctx, models.AuditFilter{AgencyID: f.agency.ID, AfterID: page[0].ID}, 1)
							if err != nil || len(probe) != 1 {
								b.Fatalf("newer probe: %v", err)
							}
						}
					}
				})
			}
		})
	}
}

var _ io.Writer = (*countWriter)(nil)
