package kmstest_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"keyconsole/kms/kmstest"
)

func TestServerSeededKeysAndAliases(t *testing.T) {
	srv := kmstest.Start(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q is not on 127.0.0.1", srv.Endpoint)
	}
	client := srv.Client()
	for _, tc := range []struct {
		id   string
		want string
	}{
		{kmstest.AliasA, srv.KeyARN(kmstest.KeyA)},
		{kmstest.AliasB, srv.KeyARN(kmstest.KeyB)},
		{kmstest.KeyA, srv.KeyARN(kmstest.KeyA)},
		{kmstest.KeyB, srv.KeyARN(kmstest.KeyB)},
	} {
		out, err := client.DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: awssdk.String(tc.id)})
		if err != nil {
			t.Fatalf("describe %s: %v", tc.id, err)
		}
		if got := awssdk.ToString(out.KeyMetadata.Arn); got != tc.want {
			t.Errorf("describe %s: arn %q, want %q", tc.id, got, tc.want)
		}
		if !out.KeyMetadata.Enabled {
			t.Errorf("describe %s: key is not enabled", tc.id)
		}
	}
}

func TestServerStopRestartKeepsState(t *testing.T) {
	srv := kmstest.Start(t)
	port := srv.Port
	srv.DisableKey(t, kmstest.KeyA)

	srv.Stop(t)
	conn, err := net.DialTimeout("tcp", srv.Endpoint[len("http://"):], time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("port %d still accepts connections after Stop", port)
	}

	srv.Restart(t)
	if srv.Port != port {
		t.Fatalf("restarted on port %d, want %d", srv.Port, port)
	}
	out, err := srv.Client().DescribeKey(context.Background(), &awskms.DescribeKeyInput{KeyId: awssdk.String(kmstest.KeyA)})
	if err != nil {
		t.Fatalf("describe after restart: %v", err)
	}
	if out.KeyMetadata.KeyState != types.KeyStateDisabled {
		t.Errorf("key state after restart %q, want %q", out.KeyMetadata.KeyState, types.KeyStateDisabled)
	}
	srv.EnableKey(t, kmstest.KeyA)
}

func TestClosedEndpointRefuses(t *testing.T) {
	ep := kmstest.ClosedEndpoint(t)
	if !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Fatalf("closed endpoint %q is not on 127.0.0.1", ep)
	}
	conn, err := net.DialTimeout("tcp", ep[len("http://"):], time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("something listens on %s", ep)
	}
}
