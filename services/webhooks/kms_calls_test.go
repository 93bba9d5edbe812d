package webhooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"keyconsole/kms"
	kmsaws "keyconsole/kms/aws"
	"keyconsole/kms/kmstest"
	"keyconsole/models"
	"keyconsole/models/modelstest"
)

// kmsCalls is a counting view of the envelope's Stats: every call made to the
// keyring (GenerateDataKey, Decrypt, Encrypt), failed ones included.
func kmsCalls(e *kms.Envelope) uint64 {
	var n uint64
	for _, v := range e.Stats().KMSCalls {
		n += v
	}
	return n
}

// countingReceiver answers 204 to everything and counts what it got.
func countingReceiver(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderSignature) == "" {
			tb.Errorf("delivery without a signature")
		}
		n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(srv.Close)
	return srv, &n
}

// rotatingEndpoint creates an endpoint and rotates its secret, so every
// delivery opens two sealed secrets (new and old) through the secret service.
func rotatingEndpoint(tb testing.TB, env *svcEnv, svc *Service, url string) models.WebhookEndpoint {
	tb.Helper()
	ep := env.create(svc, "busy receiver", url, "kms-count-secret-00001")
	_, ep, err := svc.SetSecret(context.Background(), admin(), env.agency.ID, ep.ID, ep.SecretVersion, SecretChoice{Generate: true, Overlap: MaxOverlap})
	if err != nil {
		tb.Fatalf("SetSecret: %v", err)
	}
	if !ep.InOverlap(env.clock.Now()) {
		tb.Fatal("no rotation window after SetSecret")
	}
	return ep
}

// deliverMany queues n events for ep, empties the envelope's caches (a replica
// that just started), drains the queue and returns the KMS calls the
// deliveries cost.
func deliverMany(tb testing.TB, env *svcEnv, svc *Service, ep models.WebhookEndpoint, n int) uint64 {
	tb.Helper()
	ctx := context.Background()
	err := env.db.Tx(ctx, func(ctx context.Context) error {
		for range n {
			if _, err := svc.Deliver(ctx, env.agency.ID, ep.ID, EventCourtDateChanged, []byte(`{"case":"CR-1"}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("queue %d deliveries: %v", n, err)
	}
	env.envelope.Purge()
	before := kmsCalls(env.envelope)
	w := svc.NewWorker(WorkerOptions{ID: "bench", Batch: 250, Concurrency: workerConcurrency})
	if got := drain(tb, w); got != n {
		tb.Fatalf("worker attempted %d deliveries, want %d", got, n)
	}
	return kmsCalls(env.envelope) - before
}

// workerConcurrency is the deliveries the worker of these tests makes at once.
const workerConcurrency = 16

func TestKMSCallsForManyDeliveries(t *testing.T) {
	db := modelstest.Open(t, models.SQLite)
	env := newSvcEnv(t, db)
	svc := env.service(loopbackOnly())
	srv, got := countingReceiver(t)
	ep := rotatingEndpoint(t, env, svc, srv.URL)
	const n = 2000
	calls := deliverMany(t, env, svc, ep, n)
	if got.Load() != n {
		t.Fatalf("receiver got %d deliveries, want %d", got.Load(), n)
	}
	// Two sealed secrets (new and old) are opened for every delivery; with the
	// envelope's cache that is one Decrypt per secret, not one per delivery.
	if calls == 0 || calls > 4 {
		t.Fatalf("%d deliveries cost %d KMS calls, want 1 to 4", n, calls)
	}
	// Every open either hits the cache or waits on the one keyring call of
	// its secret; only the opens that start before that call returns can miss,
	// and the worker runs at most workerConcurrency at once.
	st := env.envelope.Stats()
	if st.OpenCacheHits+st.OpenCacheMisses != 2*n {
		t.Fatalf("open cache hits %d + misses %d for %d opens", st.OpenCacheHits, st.OpenCacheMisses, 2*n)
	}
	if st.OpenCacheMisses > 2*workerConcurrency {
		t.Fatalf("open cache misses %d, want at most %d (two secrets per concurrent delivery)", st.OpenCacheMisses, 2*workerConcurrency)
	}
	t.Logf("%d deliveries signed with two secrets: %d KMS calls (%v), %d open-cache hits", n, calls, st.KMSCalls, st.OpenCacheHits)
}

// BenchmarkKMSCallsPer10000Deliveries makes 10,000 real deliveries to a
// receiver on 127.0.0.1 during a rotation window (two sealed secrets opened
// through the secret service for each) and reports the KMS calls they cost,
// with a local master key and with AWS KMS (local-kms on 127.0.0.1).
func BenchmarkKMSCallsPer10000Deliveries(b *testing.B) {
	keyrings := []struct {
		name string
		kr   func(b *testing.B) kms.Keyring
	}{
		{"local", nil},
		{"aws", func(b *testing.B) kms.Keyring {
			srv := kmstest.Start(b)
			kr, err := kmsaws.New(context.Background(), kmsaws.Options{KeyID: kmstest.AliasA, Region: kmstest.Region, Endpoint: srv.Endpoint, MaxAttempts: 1})
			if err != nil {
				b.Fatalf("aws keyring: %v", err)
			}
			return kr
		}},
	}
	for _, k := range keyrings {
		b.Run(k.name, func(b *testing.B) {
			db := modelstest.Open(b, models.SQLite)
			var env *svcEnv
			if k.kr == nil {
				env = newSvcEnv(b, db)
			} else {
				env = newSvcEnvWith(b, db, k.kr(b))
			}
			svc := env.service(loopbackOnly())
			srv, _ := countingReceiver(b)
			ep := rotatingEndpoint(b, env, svc, srv.URL)
			var calls uint64
			start := time.Now()
			iterations := 0
			for b.Loop() {
				calls += deliverMany(b, env, svc, ep, 10000)
				iterations++
			}
			b.ReportMetric(float64(calls)/float64(iterations), "kms-calls/10k-deliveries")
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(iterations), "ms/10k-deliveries")
		})
	}
}

// BenchmarkDeliverySigning is the per-delivery signing work of the worker
// during a rotation window: open the new and the old secret through the
// secret service (a database read and a cached envelope open each) and sign
// a 1 KiB body with both.
func BenchmarkDeliverySigning(b *testing.B) {
	db := modelstest.Open(b, models.SQLite)
	env := newSvcEnv(b, db)
	svc := env.service(loopbackOnly())
	ep := rotatingEndpoint(b, env, svc, "https://hooks.example.gov/in")
	ctx := context.Background()
	body := make([]byte, 1024)
	for i := range body {
		body[i] = 'a'
	}
	before := kmsCalls(env.envelope)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		secs, _, err := svc.signingSecrets(ctx, ep, env.clock.Now(), false)
		if err != nil {
			b.Fatal(err)
		}
		if len(secs) != 2 || Sign(secs, "msg_bench", time.Now(), body) == "" {
			b.Fatal("not signed with two secrets")
		}
	}
	b.ReportMetric(float64(kmsCalls(env.envelope)-before), "kms-calls")
}
