package redisstore

import (
	"strconv"
	"strings"

	"github.com/blazingflow/blazing/core/store"
)

// Key schema. Every key of a namespace starts with "{<ns>}:", so all of
// them carry the same Redis Cluster hash tag and live in one slot:
//
//	{ns}:o:<unit>:<path>    HASH   one operation (fields below)
//	{ns}:u:<unit>           HASH   the unit's operations: path -> parent path
//	{ns}:ready:<lane>       ZSET   ready work; score -priority, member
//	                               <12 hex digits of seq><unit>:<path>, so that
//	                               equal priorities pop in FIFO (lex) order
//	{ns}:delayed:<lane>     ZSET   retries waiting for their backoff, by due ms
//	{ns}:running:<lane>     ZSET   held operations, by lease end ms
//	{ns}:signal:<lane>      LIST   wake-up tokens for blocked Reserve calls
//	{ns}:seq, {ns}:lease    STRING counters (FIFO order, lease ids)
//	{ns}:dead               ZSET   failed units (dead letters), by finish ms
//	{ns}:alive              ZSET   worker -> the latest lease end promised to
//	                               it (Reserve, Renew; Repair's liveness)
//	{ns}:repairing          STRING Repair ran lately (RepairGap)
//	{ns}:runs               STREAM the index of runs: an entry per run at its
//	                               creation ms, field u = the unit (Trim's order)
//	{ns}:bc:<unit>          LIST   the run's stored breadcrumbs (msgpack arrays)
//	{ns}:bcd:<unit>         STRING breadcrumbs of the run dropped past the bound
//	{ns}:st:<minute ms>     HASH   counts of that minute: "<step name or @lane>|<what>"
//	{ns}:in:<inbox>         STRING an open inbox (registration, InboxTTL)
//	{ns}:nt:<inbox>         LIST   the inbox's notes (InboxTTL)
//	{ns}:wake:<id>          LIST   private wake-up list of one blocked call
//	{ns}:sched:<name>       HASH   one schedule (fields in schedules.go)
//	{ns}:scheds             SET    the names of the schedules
//
// Why one hash tag per namespace: a unit's change touches keys that are not
// known before the script runs (the operation Reserve pops, the inboxes of
// waiters, the descendants a finish cancels, the lane queues), and several
// units at once (batches). With one tag, every key a script could reach sits
// in the slot the script is routed to, so all scripts run unchanged on Redis
// Cluster. Scripts receive every key the caller knows in KEYS; the keys they
// discover while running (the ones listed above) are built in Lua from the
// prefix in ARGV[1]. That is not the strict "declare every key" rule: it
// works on Redis Cluster because the keys share the slot, but a proxy that
// routes on declared keys alone would not see them.
//
// The known limit: one application's load sits on one shard. Scaling out is
// by namespace (apps), not within one app.
//
// Operation hash fields are one letter to keep a finished run small; fields
// that would hold a zero value are not written:
//
//	n name          l lane            s status         a args
//	r result        e error (msgpack) t attempts       x lapses
//	k worker        i lease id        c created ms     b started ms
//	f finished ms   p parent (*)      h depth (*)      w waiters (msgpack)
//	K "has called"  q ready seq       y ready-at ms    v last renewed ms
//	R retries       B backoff ms      M backoff max ms T timeout ms
//	P priority
//
// (*) only when they differ from what the path implies ("0.3.1" has parent
// "0.3" and depth 2).
type keys struct {
	prefix  string // "{ns}:"
	globals []string
	ready   [store.NumLanes]string
	delayed [store.NumLanes]string
	running [store.NumLanes]string
	signal  [store.NumLanes]string
	seq     string
	lease   string
	dead    string
	alive   string
	runs    string
}

// numGlobals is how many KEYS every script receives first, in this order:
// ready, delayed and running per lane, seq, lease, signal per lane, dead.
const numGlobals = 3*store.NumLanes + 2 + store.NumLanes + 1

func newKeys(ns string) keys {
	k := keys{prefix: "{" + ns + "}:"}
	for l := store.Lane(0); l < store.NumLanes; l++ {
		k.ready[l] = k.prefix + "ready:" + l.String()
		k.delayed[l] = k.prefix + "delayed:" + l.String()
		k.running[l] = k.prefix + "running:" + l.String()
		k.signal[l] = k.prefix + "signal:" + l.String()
	}
	k.seq = k.prefix + "seq"
	k.lease = k.prefix + "lease"
	k.dead = k.prefix + "dead"
	k.alive = k.prefix + "alive"
	k.runs = k.prefix + "runs"
	k.globals = append(k.globals, k.ready[:]...)
	k.globals = append(k.globals, k.delayed[:]...)
	k.globals = append(k.globals, k.running[:]...)
	k.globals = append(k.globals, k.seq, k.lease)
	k.globals = append(k.globals, k.signal[:]...)
	k.globals = append(k.globals, k.dead)
	return k
}

func (k *keys) op(r store.Ref) string    { return k.prefix + "o:" + r.Unit + ":" + r.Path }
func (k *keys) unit(u string) string     { return k.prefix + "u:" + u }
func (k *keys) inbox(name string) string { return k.prefix + "in:" + name }
func (k *keys) notes(name string) string { return k.prefix + "nt:" + name }
func (k *keys) wake(id string) string    { return k.prefix + "wake:" + id }
func (k *keys) crumbs(u string) string   { return k.prefix + "bc:" + u }
func (k *keys) dropped(u string) string  { return k.prefix + "bcd:" + u }
func (k *keys) minute(ms int64) string   { return k.prefix + "st:" + strconv.FormatInt(ms, 10) }

// withGlobals returns the global keys followed by extra, ready for KEYS.
func (k *keys) withGlobals(extra int) []string {
	out := make([]string, numGlobals, numGlobals+extra)
	copy(out, k.globals)
	return out
}

// splitID splits "<unit>:<path>" (the member of the lane ZSETs) at its last
// colon; paths never contain one (Submit rejects them).
func splitID(id string) (store.Ref, bool) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return store.Ref{}, false
	}
	return store.Ref{Unit: id[:i], Path: id[i+1:]}, true
}

// parentOf and depthOf are what a path implies; the hash stores parent and
// depth only when a submission said otherwise.
func parentOf(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func depthOf(path string) int { return strings.Count(path, ".") }
