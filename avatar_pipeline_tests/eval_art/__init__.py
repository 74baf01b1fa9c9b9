"""Art for the consistency evaluation set: backgrounds, lighting, framing, and two independent
character drawing routines (the product's offline renderer, matted out of its own background,
and ``renderer_b``, written separately with a different construction). Not product code."""
