"""The Teams app package: manifest, localisation files, icons and the package builder."""
