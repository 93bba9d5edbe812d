package models_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"keyconsole/models"
)

// tmpfs mounts a small tmpfs on a fresh directory for the test (root only;
// skipped otherwise) and unmounts it afterwards.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a full disk is made with a small tmpfs, which needs root: mount: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file into dir until its file system has no byte left.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{1 << 20, 64 << 10, 4 << 10, 512, 1} {
		buf := make([]byte, n)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				break
			}
		}
	}
	return path
}

// TestFault03_StorageFullIsOneKind checks that a database which cannot
// store more answers one error kind, whatever the engine says: SQLite on a
// full file system (SQLITE_FULL), a SQLite connection that may not write
// (SQLITE_READONLY), PostgreSQL's disk_full and a bare ENOSPC; and that
// the write probe says so while reads keep working.
func TestFault03_StorageFullIsOneKind(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite on a full file system", func(t *testing.T) {
		dir := tmpfs(t, "4m")
		db, err := models.Open(ctx, models.DBConfig{URL: filepath.Join(dir, "kc.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.ProbeWrite(ctx); err != nil {
			t.Fatalf("write probe on free space: %v", err)
		}
		if err := db.Gorm.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
			t.Fatal(err)
		}
		filler := fill(t, dir)
		store := models.NewAgencyStore(db)
		now := time.Now().UTC()
		err = db.Tx(ctx, func(ctx context.Context) error {
			for i := range 50 {
				a := &models.Agency{Slug: fmt.Sprintf("full-%d", i), Name: "Full", CreatedAt: now, UpdatedAt: now}
				if err := store.Create(ctx, a); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, models.ErrStorageFull) || errors.Is(err, models.ErrUnavailable) {
			t.Fatalf("write on a full disk: %v, want ErrStorageFull", err)
		}
		if err := db.ProbeWrite(ctx); !errors.Is(err, models.ErrStorageFull) {
			t.Fatalf("write probe on a full disk: %v, want ErrStorageFull", err)
		}
		if !db.StorageFull() {
			t.Fatal("StorageFull() is false during the episode")
		}
		if list, err := store.List(ctx); err != nil || len(list) != 0 {
			t.Fatalf("reads on a full disk: %d agencies, %v", len(list), err)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		// The episode ends once writes have not failed for a few seconds.
		deadline := time.Now().Add(30 * time.Second)
		for err := db.ProbeWrite(ctx); err != nil; err = db.ProbeWrite(ctx) {
			if time.Now().After(deadline) {
				t.Fatalf("write probe once space is freed: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if db.StorageFull() {
			t.Fatal("StorageFull() after the probe succeeded")
		}
	})
	t.Run("sqlite connection that may not write", func(t *testing.T) {
		db, err := models.Open(ctx, models.DBConfig{URL: filepath.Join(t.TempDir(), "kc.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// One connection, made read-only by SQLite itself.
		db.SQL().SetMaxOpenConns(1)
		if err := db.Gorm.Exec("PRAGMA query_only = 1").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.ProbeWrite(ctx); !errors.Is(err, models.ErrStorageFull) {
			t.Fatalf("write on a read-only connection: %v, want ErrStorageFull", err)
		}
	})
	t.Run("postgres disk_full and ENOSPC", func(t *testing.T) {
		// A PostgreSQL server is shared by every test here: its disk is not
		// filled, the error it answers on a full disk (SQLSTATE 53100) is
		// built instead, as is a write that failed with ENOSPC.
		for _, err := range []error{
			fmt.Errorf("insert: %w", &pgconn.PgError{Severity: "ERROR", Code: "53100", Message: `could not extend file "base/16384/16385": No space left on device`}),
			&os.PathError{Op: "write", Path: "/var/lib/keyconsole/keyconsole.db-wal", Err: syscall.ENOSPC},
		} {
			if got := models.Classify(err); !errors.Is(got, models.ErrStorageFull) || errors.Is(got, models.ErrUnavailable) {
				t.Errorf("Classify(%v) = %v, want ErrStorageFull", err, got)
			}
		}
		if got := models.Classify(&pgconn.PgError{Code: "53300"}); errors.Is(got, models.ErrStorageFull) {
			t.Errorf("too many connections classified as storage full")
		}
	})
}
