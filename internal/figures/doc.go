// Package figures holds no code, only a test: TestREADMEFigures checks each
// figure in the "## Figures" and "## Performance" sections of the
// repository's README.md against the committed result it comes from, under
// bench/results/ (or, for the earlier full runs that were replaced, in the
// git history).
package figures
