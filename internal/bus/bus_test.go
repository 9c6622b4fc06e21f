package bus

import (
	"sync"
	"testing"
)

func TestLocalRoutesByStream(t *testing.T) {
	b := NewLocal()
	var a, c int
	cancelA := b.Subscribe("x", func(*Signal) { a++ })
	b.Subscribe("y", func(*Signal) { c++ })
	if n := b.Publish(&Signal{Stream: "x"}); n != 1 {
		t.Fatalf("delivered to %d", n)
	}
	b.Publish(&Signal{Stream: "z"})
	cancelA()
	cancelA()
	if n := b.Publish(&Signal{Stream: "x"}); n != 0 {
		t.Fatalf("after cancel delivered to %d", n)
	}
	if a != 1 || c != 0 || b.Subscribers("x") != 0 || b.Subscribers("y") != 1 {
		t.Fatalf("a=%d c=%d", a, c)
	}
}

func TestLocalConcurrent(t *testing.T) {
	b := NewLocal()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				cancel := b.Subscribe("s", func(*Signal) {})
				cancel()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				b.Publish(&Signal{Stream: "s"})
			}
		}()
	}
	wg.Wait()
	if b.Subscribers("s") != 0 {
		t.Fatal("subscriptions left")
	}
}

func BenchmarkPublish(b *testing.B) {
	bus := NewLocal()
	bus.Subscribe("s", func(*Signal) {})
	s := &Signal{Stream: "s"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		bus.Publish(s)
	}
}
