//go:build !linux

package storetest

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; Stop and t.Cleanup still end the server.
func dieWithParent(*exec.Cmd) {}
