package kms_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"keyconsole/kms"
)

// TestConcurrentOpensShareOneDecrypt opens one sealed secret from many
// goroutines at once with empty caches (a replica that just started under
// load): the data key is unwrapped by one keyring call, not one per opener.
func TestConcurrentOpensShareOneDecrypt(t *testing.T) {
	for _, p := range providers() {
		t.Run(p.name, func(t *testing.T) {
			kr := countCalls(p.keyring(t))
			env := kms.NewEnvelope(kr, kms.Options{})
			ctx := context.Background()
			ec := kms.EncryptionContext{"agency": "7", "record_type": "webhook_secret", "record_id": "42"}
			blob, err := env.Seal(ctx, ec, []byte("shared secret"))
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			env.Purge()
			const openers = 32
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, openers)
			for range openers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					pt, err := env.Open(ctx, ec, blob)
					if err == nil && !bytes.Equal(pt, []byte("shared secret")) {
						err = kms.ErrIntegrity
					}
					errs <- err
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
			}
			if n := kr.count(kms.OpDecrypt); n != 1 {
				t.Fatalf("%d concurrent opens made %d Decrypt calls, want 1", openers, n)
			}
		})
	}
}

// TestSharedOpenCallerCancelled checks that an opener whose context has
// ended does not spoil the shared unwrap: the key it started unwrapping is
// cached, and the next opener gets it without another keyring call.
func TestSharedOpenCallerCancelled(t *testing.T) {
	kr := countCalls(newLocal(t, newMasterKey()))
	env := kms.NewEnvelope(kr, kms.Options{})
	ec := kms.EncryptionContext{"agency": "7", "record_type": "webhook_secret", "record_id": "43"}
	blob, err := env.Seal(context.Background(), ec, []byte("s"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	env.Purge()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if pt, err := env.Open(cancelled, ec, blob); err == nil && string(pt) != "s" {
		t.Fatalf("Open with a cancelled context returned %q", pt)
	}
	if pt, err := env.Open(context.Background(), ec, blob); err != nil || string(pt) != "s" {
		t.Fatalf("Open after a cancelled opener: %q, %v", pt, err)
	}
	if n := kr.count(kms.OpDecrypt); n != 1 {
		t.Fatalf("%d Decrypt calls, want 1 (the cancelled opener's unwrap is cached)", n)
	}
}
