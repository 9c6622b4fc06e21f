//go:build unix

package bolt

import (
	"os"
	"syscall"
)

// lockShared takes a shared lock on f without waiting, so that no writer
// (bbolt holds an exclusive one) changes the file while checkFile reads it.
func lockShared(f *os.File) (func(), error) {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }, nil
}
