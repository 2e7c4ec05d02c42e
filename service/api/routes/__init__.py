"""One APIRouter per file, each with its request and response models."""
