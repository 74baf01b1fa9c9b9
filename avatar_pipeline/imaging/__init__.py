"""ImageService: generate() (text-to-image) and edit() (reference-based), over providers."""
