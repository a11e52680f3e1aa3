package storetest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill redis-server if the test binary dies
// without stopping it (a panic skips TestMain's cleanup).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
