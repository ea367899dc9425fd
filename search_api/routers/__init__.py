"""One router per resource; handlers stay thin over the plain functions they call."""
