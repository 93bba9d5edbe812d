package local

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreateKeyFile reads a master key file: exactly 32 raw bytes, a regular
// file that neither group nor others may read or write. A file that breaks
// these rules is refused, never repaired. When the file does not exist and
// create is true, a new random key is written there with mode 0600 (its
// directory is created with 0700 if missing); when create is false the error
// matches fs.ErrNotExist. Two processes creating the same file at once end up
// with the same key.
func LoadOrCreateKeyFile(path string, create bool) ([]byte, error) {
	key, err := readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !create {
		return key, err
	}
	if err := writeKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return readKeyFile(path)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kms/local: master key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kms/local: master key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("kms/local: master key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("kms/local: master key file %s has mode %04o; group and others must have no access (chmod 600)", path, perm)
	}
	if info.Size() != MasterKeySize {
		return nil, fmt.Errorf("kms/local: master key file %s must hold exactly %d bytes, it holds %d", path, MasterKeySize, info.Size())
	}
	key := make([]byte, MasterKeySize)
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, fmt.Errorf("kms/local: master key file %s: %w", path, err)
	}
	return key, nil
}

// writeKeyFile writes a new key to a temporary file and links it into place,
// so the key file is either absent or complete, and an existing one is never
// replaced (the error then matches fs.ErrExist).
func writeKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("kms/local: master key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return fmt.Errorf("kms/local: create master key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)

	key := make([]byte, MasterKeySize)
	defer clear(key)
	rand.Read(key)
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(key)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("kms/local: create master key: %w", err)
	}
	if err := os.Link(tmpName, path); err != nil {
		return fmt.Errorf("kms/local: create master key: %w", err)
	}
	return nil
}
