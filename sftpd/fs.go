package sftpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/sftp"
)

// accountFS serves the SFTP requests of one account. Every path is cleaned
// as an absolute path of the account's virtual tree and then opened through
// an os.Root, so neither "..", absolute paths nor symbolic links can reach
// anything outside the account's directory.
type accountFS struct {
	root    *os.Root
	account string
	logger  *slog.Logger
}

func newHandlers(fsys *accountFS) sftp.Handlers {
	return sftp.Handlers{FileGet: fsys, FilePut: fsys, FileCmd: fsys, FileList: fsys}
}

// rel maps a client path to a path relative to the account root.
func rel(p string) string {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return "."
	}
	return strings.TrimPrefix(clean, "/")
}

// errUnsupported reports an operation this server never performs.
var errUnsupported = fmt.Errorf("operation not supported: %w", sftp.ErrSSHFxOpUnsupported)

// status turns a filesystem error into an SFTP status that names neither
// the server's directories nor anything outside the account.
func (a *accountFS) status(op, p string, err error) error {
	if err == nil || isSFTPStatus(err) {
		return err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return sftp.ErrSSHFxNoSuchFile
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("already exists: %w", sftp.ErrSSHFxFailure)
	case errors.Is(err, syscall.ENOTEMPTY):
		return fmt.Errorf("directory not empty: %w", sftp.ErrSSHFxFailure)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("not a directory: %w", sftp.ErrSSHFxFailure)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("is a directory: %w", sftp.ErrSSHFxFailure)
	case errors.Is(err, fs.ErrPermission):
		return sftp.ErrSSHFxPermissionDenied
	case errors.Is(err, syscall.ELOOP) || strings.Contains(err.Error(), "path escapes from parent"):
		a.logger.Warn("sftp path outside account refused", "account", a.account, "op", op, "path", p)
		return sftp.ErrSSHFxPermissionDenied
	}
	a.logger.Error("sftp operation failed", "account", a.account, "op", op, "path", p, "error", err)
	return fmt.Errorf("%s failed: %w", op, sftp.ErrSSHFxFailure)
}

func isSFTPStatus(err error) bool {
	for _, s := range []error{sftp.ErrSSHFxNoSuchFile, sftp.ErrSSHFxPermissionDenied, sftp.ErrSSHFxFailure, sftp.ErrSSHFxOpUnsupported, sftp.ErrSSHFxEOF, sftp.ErrSSHFxBadMessage} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Fileread opens a regular file for download.
func (a *accountFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	name := rel(r.Filepath)
	f, err := a.openRegular(name, os.O_RDONLY)
	if err != nil {
		return nil, a.status("open", r.Filepath, err)
	}
	return &file{f: f, fs: a, path: r.Filepath}, nil
}

// Filewrite opens a file for upload, creating it if the client asks.
func (a *accountFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	f, err := a.openForWrite(r, os.O_WRONLY)
	if err != nil {
		return nil, a.status("open", r.Filepath, err)
	}
	return &file{f: f, fs: a, path: r.Filepath}, nil
}

// OpenFile opens a file for reading and writing on the same handle.
func (a *accountFS) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	f, err := a.openForWrite(r, os.O_RDWR)
	if err != nil {
		return nil, a.status("open", r.Filepath, err)
	}
	return &file{f: f, fs: a, path: r.Filepath}, nil
}

func (a *accountFS) openForWrite(r *sftp.Request, mode int) (*os.File, error) {
	flags := r.Pflags()
	osFlags := mode
	if flags.Creat {
		osFlags |= os.O_CREATE
	}
	if flags.Trunc {
		osFlags |= os.O_TRUNC
	}
	if flags.Excl {
		osFlags |= os.O_EXCL
	}
	// The append flag is not mapped to O_APPEND: the client sends explicit
	// offsets and os.File.WriteAt refuses files opened with O_APPEND.
	return a.openRegular(rel(r.Filepath), osFlags)
}

// errNotRegular refuses devices, pipes and sockets, which could block or
// reveal more than file contents.
var errNotRegular = fmt.Errorf("not a regular file: %w", sftp.ErrSSHFxFailure)

// openRegular opens name inside the root and makes sure it is a regular file.
func (a *accountFS) openRegular(name string, flags int) (*os.File, error) {
	if fi, err := a.root.Stat(name); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, syscall.EISDIR
		}
		return nil, errNotRegular
	} else if err != nil && (flags&os.O_CREATE == 0 || !errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	f, err := a.root.OpenFile(name, flags, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, errNotRegular
	}
	return f, nil
}

// Filecmd handles setstat, rename, rmdir, mkdir, remove, and refuses links.
func (a *accountFS) Filecmd(r *sftp.Request) error {
	name := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		return a.status("setstat", r.Filepath, a.setstat(name, r))
	case "Rename":
		target := rel(r.Target)
		if name == "." || target == "." {
			return sftp.ErrSSHFxPermissionDenied
		}
		if _, err := a.root.Lstat(target); err == nil {
			return fmt.Errorf("target already exists: %w", sftp.ErrSSHFxFailure)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return a.status("rename", r.Target, err)
		}
		return a.status("rename", r.Filepath, a.root.Rename(name, target))
	case "Rmdir":
		fi, err := a.root.Lstat(name)
		if err != nil {
			return a.status("rmdir", r.Filepath, err)
		}
		if !fi.IsDir() {
			return a.status("rmdir", r.Filepath, syscall.ENOTDIR)
		}
		if name == "." {
			return sftp.ErrSSHFxPermissionDenied
		}
		return a.status("rmdir", r.Filepath, a.root.Remove(name))
	case "Mkdir":
		return a.status("mkdir", r.Filepath, a.root.Mkdir(name, 0o700))
	case "Remove":
		fi, err := a.root.Lstat(name)
		if err != nil {
			return a.status("remove", r.Filepath, err)
		}
		if fi.IsDir() {
			return a.status("remove", r.Filepath, syscall.EISDIR)
		}
		return a.status("remove", r.Filepath, a.root.Remove(name))
	case "Symlink", "Link":
		a.logger.Info("sftp link creation refused", "account", a.account, "op", strings.ToLower(r.Method), "path", r.Target)
		return fmt.Errorf("links are not allowed: %w", sftp.ErrSSHFxPermissionDenied)
	default:
		return errUnsupported
	}
}

// PosixRename renames, replacing an existing target as rename(2) does.
func (a *accountFS) PosixRename(r *sftp.Request) error {
	name, target := rel(r.Filepath), rel(r.Target)
	if name == "." || target == "." {
		return sftp.ErrSSHFxPermissionDenied
	}
	return a.status("rename", r.Filepath, a.root.Rename(name, target))
}

func (a *accountFS) setstat(name string, r *sftp.Request) error {
	flags := r.AttrFlags()
	attrs := r.Attributes()
	if attrs == nil {
		return fmt.Errorf("bad attributes: %w", sftp.ErrSSHFxBadMessage)
	}
	if flags.UidGid {
		return fmt.Errorf("changing owner is not allowed: %w", sftp.ErrSSHFxPermissionDenied)
	}
	if (flags.Permissions || flags.Size) && name == "." {
		return sftp.ErrSSHFxPermissionDenied
	}
	if flags.Size {
		f, err := a.openRegular(name, os.O_WRONLY)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := a.root.Chmod(name, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		atime := time.Unix(int64(attrs.Atime), 0)
		mtime := time.Unix(int64(attrs.Mtime), 0)
		if err := a.root.Chtimes(name, atime, mtime); err != nil {
			return err
		}
	}
	return nil
}

// Filelist lists a directory or stats a path. Reading links is refused.
func (a *accountFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name := rel(r.Filepath)
	switch r.Method {
	case "List":
		infos, err := a.list(name)
		if err != nil {
			return nil, a.status("list", r.Filepath, err)
		}
		return infos, nil
	case "Stat":
		fi, err := a.root.Stat(name)
		if err != nil {
			return nil, a.status("stat", r.Filepath, err)
		}
		return listerAt{fileInfo{fi}}, nil
	case "Readlink":
		return nil, fmt.Errorf("reading links is not allowed: %w", sftp.ErrSSHFxPermissionDenied)
	default:
		return nil, errUnsupported
	}
}

// Lstat stats a path without following a final symbolic link.
func (a *accountFS) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := a.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, a.status("lstat", r.Filepath, err)
	}
	return listerAt{fileInfo{fi}}, nil
}

func (a *accountFS) list(name string) (listerAt, error) {
	d, err := a.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	fi, err := d.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, syscall.ENOTDIR
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	infos := make(listerAt, 0, len(names))
	for _, n := range names {
		// Entries are looked up through the root again rather than through
		// the directory's host path.
		fi, err := a.root.Lstat(path.Join(name, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		infos = append(infos, fileInfo{fi})
	}
	return infos, nil
}

// fileInfo hides the host's owner and group numbers from listings.
type fileInfo struct{ fs.FileInfo }

// Sys returns nil so that no host-specific data reaches the client.
func (fileInfo) Sys() any { return nil }

type listerAt []os.FileInfo

// ListAt copies entries from offset into ls.
func (l listerAt) ListAt(ls []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[offset:])
	if n < len(ls) || offset+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// file is an open account file whose errors carry no host paths.
type file struct {
	f    *os.File
	fs   *accountFS
	path string
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, f.fs.status("read", f.path, err)
	}
	return n, err
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, f.fs.status("write", f.path, err)
}

func (f *file) Close() error {
	return f.fs.status("close", f.path, f.f.Close())
}
