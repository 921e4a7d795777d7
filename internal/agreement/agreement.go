// Package agreement counts how far a classification (a view's failed lookups, say) agrees with
// the truth (a simulator's), as precision and recall.
package agreement

// Count holds the true positives, false positives and false negatives of one property.
type Count struct{ TP, FP, FN int }

// Add counts one case: what the classification says and what is true.
func (c *Count) Add(said, truth bool) {
	switch {
	case said && truth:
		c.TP++
	case said:
		c.FP++
	case truth:
		c.FN++
	}
}

// Precision is TP / (TP + FP): 1 when nothing was said.
func (c Count) Precision() float64 { return ratio(c.TP, c.TP+c.FP) }

// Recall is TP / (TP + FN): 1 when nothing was true.
func (c Count) Recall() float64 { return ratio(c.TP, c.TP+c.FN) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}
