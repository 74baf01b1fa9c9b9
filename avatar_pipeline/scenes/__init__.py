"""The scene flow's writing side: episode context, the scene writer, emotion detection, and
scene consistency (drift) against the kit's primary anchor."""
