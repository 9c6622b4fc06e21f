package monitor

// Ditto's reporting windows: PT1M in 10 s slots, PT1H in 1 min slots, PT24H
// in 1 h slots. A window sums the slots in (slot(now-window), slot(now)],
// i.e. the current slot and the window/resolution-1 before it, so a ring of
// window/resolution buckets holds exactly what a window can report.
const (
	res10s = 10_000
	res1m  = 60_000
	res1h  = 3_600_000

	slots1m  = 6  // PT1M / 10 s
	slots1h  = 60 // PT1H / 1 min
	slots24h = 24 // PT24H / 1 h

	minutesPerDay = 1440
)

type bucket struct {
	slot int64 // slot number (ms / resolution) the count belongs to
	n    int64
}

// rings are the three windows of one success or failure measurement.
type rings struct {
	last int64 // unix ms of the latest message, 0: never
	s10  [slots1m]bucket
	m1   [slots1h]bucket
	h1   [slots24h]bucket
}

// add counts one message at ms and returns the count of its 10 s slot (the
// throttling detection window).
func (r *rings) add(ms int64) int64 {
	if ms > r.last {
		r.last = ms
	}
	n := bump(r.s10[:], ms/res10s)
	bump(r.m1[:], ms/res1m)
	bump(r.h1[:], ms/res1h)
	return n
}

func bump(ring []bucket, slot int64) int64 {
	b := &ring[uint64(slot)%uint64(len(ring))]
	if b.slot != slot {
		if slot < b.slot {
			return 0 // older than anything the ring can still report
		}
		b.slot, b.n = slot, 0
	}
	b.n++
	return b.n
}

func sum(ring []bucket, nowSlot int64) int64 {
	min := nowSlot - int64(len(ring))
	var s int64
	for i := range ring {
		if b := &ring[i]; b.slot > min && b.slot <= nowSlot {
			s += b.n
		}
	}
	return s
}

func (r *rings) measure(now int64) Measurement {
	return Measurement{
		PT1M:          sum(r.s10[:], now/res10s),
		PT1H:          sum(r.m1[:], now/res1m),
		PT24H:         sum(r.h1[:], now/res1h),
		LastMessageAt: msTime(r.last),
	}
}

// reset clears the counts; Ditto keeps the latest message time.
func (r *rings) reset() {
	last := r.last
	*r = rings{last: last}
}

// minuteMarks records the throttled metric as Ditto does: one mark per minute
// over a day (at most 1 per slot); PT1M is 1 when the last mark is less than
// a minute old, PT1H and PT24H count the marked minutes.
type minuteMarks struct {
	last  int64
	marks [minutesPerDay]int32 // minute number since the epoch; fits int32 for millennia
}

func (m *minuteMarks) add(ms int64) {
	if ms > m.last {
		m.last = ms
	}
	slot := ms / res1m
	m.marks[uint64(slot)%minutesPerDay] = int32(slot)
}

func (m *minuteMarks) count(nowSlot int64, minutes int) int64 {
	var c int64
	for k := 0; k < minutes; k++ {
		s := nowSlot - int64(k)
		if s > 0 && int64(m.marks[uint64(s)%minutesPerDay]) == s {
			c++
		}
	}
	return c
}

func (m *minuteMarks) measure(now int64) Measurement {
	nowSlot := now / res1m
	pt1m := m.count(nowSlot, 1)
	if m.last != 0 && now-res1m < m.last {
		pt1m = 1
	}
	return Measurement{PT1M: pt1m, PT1H: m.count(nowSlot, 60), PT24H: m.count(nowSlot, minutesPerDay),
		LastMessageAt: msTime(m.last)}
}

func (m *minuteMarks) reset() {
	last := m.last
	*m = minuteMarks{last: last}
}
