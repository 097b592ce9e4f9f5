#!/usr/bin/env python3
# Writes the seed corpora in fuzz/corpus/<target>/ (run from anywhere; the
# files are committed, so this is needed only to change the seeds). Each
# seed is laid out in the order its target's LLVMFuzzerTestOneInput reads
# its input; fuzz/fuzz_<target>.cc is the reference for every field.
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v): return struct.pack('<B', v & 0xff)
def u16(v): return struct.pack('<H', v & 0xffff)
def i16(v): return struct.pack('<h', v)
def u32(v): return struct.pack('<I', v & 0xffffffff)
def i32(v): return struct.pack('<i', v)
def u64(v): return struct.pack('<Q', v & 0xffffffffffffffff)


def write(target, name, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# ---- walkers: byte 0 even: an event buffer; odd: an aio2_attr_add recipe.
def attr_ret(aid, status, payload=b''):
    body = payload + b'\0' * (-len(payload) % 8)
    return u16(aid) + u16(status) + u32(8 + len(body)) + body


def event(user_data, res, attrs=b'', flags=0, length=None):
    n = 24 + len(attrs)
    return u32(length if length is not None else n) + u32(flags) + u64(user_data) + \
        struct.pack('<q', res) + attrs


def walkers():
    timing = attr_ret(1, 0, u64(100) + u64(200) + u64(300) + u64(400))
    write('walkers', 'empty', u8(0))
    write('walkers', 'one_event', u8(0) + event(7, 4096))
    write('walkers', 'two_events_attrs', u8(0) + event(1, 0, timing + attr_ret(2, 0, b'trace-id')) +
          event(2, -11, attr_ret(0x8001, 1) + attr_ret(5, 2)))
    write('walkers', 'short_attr', u8(0) + event(3, 0, u16(4) + u16(0) + u32(4) + b'\0' * 8))
    write('walkers', 'attr_past_event', u8(0) + event(4, 0, u16(4) + u16(0) + u32(64) + b'\0' * 8))
    write('walkers', 'event_past_buffer', u8(0) + event(5, 0, length=64))
    write('walkers', 'event_odd_len', u8(0) + event(6, 0, length=28) + b'\0' * 8)
    write('walkers', 'truncated', u8(0) + event(8, 0, timing)[:-5])
    recipe = u16(256) + b''.join(u16(i) + u16(0) + u16(l) + b'\xab' * l for i, l in
                                 [(1, 0), (2, 13), (6, 8), (0x8000, 300)])
    write('walkers', 'build_request', u8(1) + recipe)
    write('walkers', 'build_request_tight', u8(1) + u16(0) + u16(2) + u16(0) + u16(1) + b'x')


# ---- ring
PAD, BUSY = 0x40000000, 0x80000000


def ring_case(mode, shift, setup=0, base=0, pos=(0, 0, 0, 0), words=(), ops=b'',
              owner=0, cap=4096, max_recs=0, raw_pos=False, script=()):
    b = u8(mode) + u8(shift - 6) + u8(setup) + u64(base) + u8(1 if raw_pos else 0)
    for p in pos:
        b += u64(p) if raw_pos else u16(p)
    b += u32(owner) + u8(1) + u16(cap) + u8(max_recs)
    # Data words: (kind, ...): raw words (kind 1) for what the layout says.
    n = (1 << shift) // 8
    ws = list(words) + [0] * (n - len(words))
    for w in ws[:n]:
        b += u8(1) + u64(w)
    b += ops
    for sel, v in script:
        b += u64(sel) + u64(v)
    return b


def rec(length, flags=0): return length | (flags << 32)


def ring():
    write('ring', 'empty_peek', ring_case(1, 6))
    write('ring', 'empty_reap', ring_case(0, 6))
    # Two records and a PAD at the wrap, reaped both ways.
    words = [rec(16), 0xdead, rec(24), 1, 2, rec(24, PAD), 0, 0]
    for mode in (0, 1):
        write('ring', 'records_%d' % mode, ring_case(mode, 6, pos=(0, 64, 0, 0), words=words))
    # Producers and reapers interleaved; the ops bytes: 1 = push (len, flags), 0 = reap.
    ops = b''.join(u8(1) + u16(l) + u8(3) for l in (16, 32, 8, 48, 40)) + u8(0) + \
        u8(1) + u16(64) + u8(0) + u8(0) + u8(1) + u16(100) + u8(0) + u8(0)
    for mode in (0, 1):
        write('ring', 'push_reap_%d' % mode, ring_case(mode, 7, ops=ops))
        write('ring', 'push_reap_single_%d' % mode, ring_case(mode, 7, setup=3, ops=ops))
    # Near 2^32 and 2^64.
    write('ring', 'wrap32', ring_case(0, 7, base=(1 << 32) - 64, ops=ops))
    write('ring', 'wrap64', ring_case(1, 7, base=(1 << 64) - 64, ops=ops))
    # Corrupt: tail bits 1-2 (the attach bug), head past tail, cached heads.
    write('ring', 'tail20', ring_case(0, 6, pos=(0, 20, 0, 0), ops=u8(1) + u16(16) + u8(0) + u8(0)))
    write('ring', 'tail18', ring_case(1, 6, pos=(0, 18, 0, 0)))
    write('ring', 'head_past_tail', ring_case(0, 6, pos=(32, 16, 32, 32)))
    write('ring', 'producer_head_ahead', ring_case(0, 7, pos=(0, 64, 32, 0)))
    write('ring', 'reaper_tail_ahead', ring_case(1, 7, pos=(0, 16, 0, 64), words=[rec(16)]))
    # Bad record lengths inside a sound window.
    write('ring', 'bad_len', ring_case(0, 6, pos=(0, 32, 0, 0), words=[rec(12), 0, rec(200)]))
    write('ring', 'pad_overrun', ring_case(1, 6, pos=(56, 80, 56, 56),
                                           words=[rec(16)] + [0] * 6 + [rec(64, PAD)]))
    write('ring', 'busy', ring_case(1, 6, pos=(0, 32, 0, 0), words=[rec(16, BUSY)]))
    # Raw geometry: wrong magic, version, sizes.
    g = u8(4) + u8(0) + u8(0) + u8(1) + u32(0x12345678) + u16(1) + u16(384) + u64(64) + u32(0)
    write('ring', 'bad_magic', g + u64(0) + u8(0) + u16(0) * 4 + u32(0) + u8(1) + u16(64) + u8(0))
    g = u8(4) + u8(1) + u8(0) + u8(0) + u16(1) + u16(384) + u64(4096) + u32(0)
    write('ring', 'data_bytes_too_big', g + u64(0) + u8(0) + u16(0) * 4 + u32(0) + u8(1) + u16(64) + u8(0))
    # A hostile peer: scribbles positions, lengths, PADs and flags while we reap.
    script = [(0, 8), (1, 64), (1, 20), (2, 40), (3, 1 << 40), (4, 3), (5, 2),
              (6 + (8 << 3), rec(4000)), (7 + (16 << 3), rec(56, PAD)), (1, 1 << 63), (0, 0)]
    for mode in (2, 3):
        write('ring', 'scribbler_%d' % mode, ring_case(mode, 6, pos=(0, 64, 0, 0), words=words,
                                                       script=script))
    write('ring', 'scribbler_wrap64', ring_case(3, 8, base=(1 << 64) - 128, pos=(0, 64, 0, 0),
                                                words=[rec(32), 0, 0, 0, rec(32)], script=script))


# ---- submit
SYSCALLS = ['getppid', 'getpid', 'gettid', 'sched_yield', 'read', 'pread64', 'write', 'pwrite64',
            'readv', 'lseek', 'fsync', 'getcwd', 'unknown', 'huge']


def attr(aid, flags, payload=b''):
    body = payload + b'\0' * (-len(payload) % 8)
    return u16(aid) + u16(flags) + u32(8 + len(body)) + body


def request(call, fdsel=0, off=0, count=64, pos=256, raw=0, flags=0, attrs=b'', lie=0, extra=b''):
    b = u8(SYSCALLS.index(call)) + u8(fdsel) + u16(off) + u16(count) + u32(pos) + u64(raw)
    b += u8(flags & 0x7f) if flags < 0x80 else u8(0x80) + u32(flags)
    b += u8(0)  # reserved stays zero
    assert len(attrs) % 8 == 0
    b += u8(len(attrs) // 8) + attrs + u8(lie) + extra
    return b


def submit():
    tag = attr(2, 0, b'trace-01')
    timing = attr(1, 0)
    execu = attr(4, 0)
    cache = attr(5, 0)
    write('submit', 'getppid', u8(0) + request('getppid') + u8(0))
    write('submit', 'getppid_no_uring', u8(1) + request('getppid') + u8(0))
    write('submit', 'pread_attrs', u8(2 << 1) + request('pread64', attrs=timing + execu + cache) +
          request('read', count=100) + request('getcwd', count=200, attrs=tag) + u8(0))
    write('submit', 'policies', u8(3 << 1 | 1) + request('pread64', flags=(1 + 1) << 2) +
          request('pread64', flags=(3 + 1) << 2, attrs=execu) + request('pwrite64', flags=2, count=10) +
          request('lseek', raw=3) + u8(0))
    write('submit', 'bad_fd', u8(1 << 1) + request('read', fdsel=2) + request('fsync', fdsel=3) + u8(0))
    write('submit', 'unknown_nr', u8(1 << 1) + request('unknown') + request('huge') + u8(0))
    write('submit', 'bad_flags', u8(0) + request('getppid', flags=0x80000000) + u8(0))
    write('submit', 'unknown_attr_required', u8(1 << 1) + request('getppid', attrs=attr(0x8123, 1)) +
          request('getppid', attrs=attr(0x8124, 0)) + u8(0))
    write('submit', 'bad_attr_len', u8(0) + request('getppid', attrs=u16(1) + u16(0) + u32(12) + b'\0' * 8) +
          u8(0))
    write('submit', 'lie_short', u8(1 << 1) + request('getppid') + request('getppid', lie=0xf0, extra=u8(40)))
    write('submit', 'lie_odd', u8(1 << 1) + request('getppid', lie=0xf1, extra=u8(3)))
    write('submit', 'lie_long', u8(0) + request('getppid', lie=0xf2, extra=u16(5)))
    write('submit', 'truncated', u8(0) + request('getppid', attrs=tag) + u8(0x55) + u8(0))
    write('submit', 'call_sync', u8(0x20) + request('pread64', attrs=timing) + u8(0) + u16(128))
    write('submit', 'call_small_buffer', u8(0x60) + request('pread64', attrs=timing + tag) + u8(0) + u16(24))
    many = b''.join(request('readv', fdsel=n, count=3000) for n in range(5)) + \
        b''.join(request('getppid', attrs=execu) for _ in range(10))
    write('submit', 'many', u8(15 << 1) + many + u8(0))


# ---- libaio
def iocb(op, fdsel=0, off=0, count=512, pos=256, prio=0, extra=0, rw_flags=0, reserved2=0, key=0,
         flags=0, resfd=0):
    b = u8(op) + i16(prio) + u8(fdsel) + u16(off) + u16(count)
    if op == 5:
        b += u16(1)  # POLLIN
    b += u32(pos) + u8(extra)
    if extra & 1: b += u32(rw_flags)
    if extra & 2: b += u64(reserved2)
    if extra & 4: b += u32(key)
    if extra & 8: b += u8(flags) + u8(resfd)
    return b


def libaio_case(cbs, sels, nr, min_nr=3, mx=18, tsel=0, ns=1000, head=0, setup_nr=None):
    b = u8(head)
    if head & 0x80:
        b += i32(setup_nr)
    b += u8(len(cbs) - 1) + b''.join(cbs) + b''.join(u8(s) for s in sels)
    b += u8(nr + 2) + u8(min_nr + 2) + u8(mx + 2) + u8(tsel) + u32(ns)
    return b


def libaio():
    write('libaio', 'pread', libaio_case([iocb(0)], [0], 1))
    write('libaio', 'mixed', libaio_case([iocb(0), iocb(1, count=100), iocb(2), iocb(3), iocb(5),
                                          iocb(6), iocb(7, count=3), iocb(8, count=2)],
                                         [0] * 8, 8))
    write('libaio', 'null_entry', libaio_case([iocb(0), iocb(0)], [0, 0xff], 2))
    write('libaio', 'repeated_entry', libaio_case([iocb(0), iocb(0)], [0, 0xfe], 2))
    write('libaio', 'bad_fds', libaio_case([iocb(0, fdsel=3), iocb(1, fdsel=4), iocb(0, fdsel=2)],
                                           [0] * 3, 3))
    write('libaio', 'resfd', libaio_case([iocb(0, extra=8, flags=1, resfd=0), iocb(0, extra=8, flags=1, resfd=1),
                                          iocb(0, extra=8, flags=2), iocb(0, extra=8, flags=4)],
                                         [0] * 4, 4))
    write('libaio', 'rw_flags', libaio_case([iocb(0, extra=1, rw_flags=8), iocb(1, extra=1, rw_flags=0x10),
                                             iocb(0, extra=1, rw_flags=0x80), iocb(0, extra=2, reserved2=1),
                                             iocb(0, extra=4, key=7)],
                                            [0] * 5, 5))
    write('libaio', 'bad_opcode', libaio_case([iocb(4), iocb(9), iocb(0x80) + b''], [0] * 3, 3))
    write('libaio', 'negative_nr', libaio_case([iocb(0)], [0], -1))
    write('libaio', 'zero_nr', libaio_case([iocb(0)], [0], 0))
    write('libaio', 'bad_timeout', libaio_case([iocb(0)], [0], 1, tsel=1))
    write('libaio', 'negative_timeout', libaio_case([iocb(0)], [0], 1, tsel=3))
    write('libaio', 'null_events', libaio_case([iocb(0)], [0], 1, tsel=0x40))
    write('libaio', 'old_getevents', libaio_case([iocb(0), iocb(6)], [0, 0], 2, tsel=0x20))
    write('libaio', 'null_timeout_min0', libaio_case([iocb(6)], [0], 1, min_nr=0, tsel=0x80))
    write('libaio', 'setup_sizes', libaio_case([iocb(0)], [0], 1, head=0x80, setup_nr=-5))
    write('libaio', 'setup_big', libaio_case([iocb(0)], [0], 1, head=0x80, setup_nr=69999))


# ---- posix
def sev(kind, val=0, raw=0):
    b = u8(kind)
    if kind % 5 == 4: b += u32(raw)
    return b + u32(val)


def aiocb(fdsel=0, op=0, prio=0, off=0, count=512, pos=256, sig=None):
    b = u8(fdsel) + u8(op) + struct.pack('<b', prio) + u16(off) + u16(count) + u32(pos)
    return b + (sig if sig is not None else sev(0))


def posix():
    cbs = [aiocb(op=0), aiocb(op=1, count=64), aiocb(op=2), aiocb(fdsel=2, op=0)]
    # One call each: sel % 3: read, write, fsync.
    write('posix', 'calls', u8(0) + u8(len(cbs) - 1) + b''.join(cbs) + u8(0) + u8(1) + u8(2) + u8(8 + 2))
    sigs = [aiocb(sig=sev(1)), aiocb(sig=sev(2)), aiocb(sig=sev(3)), aiocb(sig=sev(4, raw=7))]
    write('posix', 'notify_kinds', u8(0) + u8(3) + b''.join(sigs) + u8(0) * 4)
    write('posix', 'bad_fd', u8(0) + u8(1) + aiocb(fdsel=3) + aiocb(fdsel=4) + u8(0) + u8(1))
    write('posix', 'bad_prio', u8(0) + u8(0) + aiocb(prio=-1) + u8(0))
    write('posix', 'fsync_bad_op', u8(0) + u8(0) + aiocb() + u8(0x82) + u32(12345))
    lio = [aiocb(op=0), aiocb(op=1, count=100), aiocb(op=2), aiocb(op=0x80) + b'', aiocb(op=0)]
    lio[3] = aiocb(op=3)
    for mode, name in ((0, 'wait'), (1, 'nowait'), (2, 'bad_mode')):
        write('posix', 'lio_' + name, u8(1) + u8(len(lio) - 1) + b''.join(lio) + u8(0) * 4 + u8(0xff) +
              u8(mode) + sev(2) + u8(len(lio) + 1))
    write('posix', 'lio_nowait_signal', u8(1) + u8(1) + aiocb() + aiocb(op=1) + u8(0) * 2 + u8(1) + sev(1) + u8(3))
    write('posix', 'lio_negative', u8(1) + u8(0) + aiocb() + u8(0) + u8(0) + sev(0) + u8(0))
    write('posix', 'lio_null_sig', u8(1) + u8(0) + aiocb() + u8(0) + u8(0x81) + sev(0) + u8(2))


walkers()
ring()
submit()
libaio()
posix()
