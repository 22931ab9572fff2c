"""Privacy measures and attacks: similarity with its floor, matchers, membership, reassembly, the scorecard
(numpy tier: never imports Keras)."""
