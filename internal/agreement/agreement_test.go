package agreement

import "testing"

func TestCount(t *testing.T) {
	var c Count
	for _, x := range []struct{ said, truth bool }{{true, true}, {true, true}, {true, true}, {true, false}, {false, true}, {false, false}} {
		c.Add(x.said, x.truth)
	}
	if c != (Count{TP: 3, FP: 1, FN: 1}) {
		t.Errorf("got %+v, want 3 true positives, 1 false positive, 1 false negative", c)
	}
	if c.Precision() != 0.75 || c.Recall() != 0.75 {
		t.Errorf("precision %v recall %v, want 3/4 each", c.Precision(), c.Recall())
	}
	if e := (Count{}); e.Precision() != 1 || e.Recall() != 1 {
		t.Errorf("nothing said, nothing true: precision %v recall %v, want 1 and 1", e.Precision(), e.Recall())
	}
}
