// Package filestore is the [archive.Store] in a local directory (a
// "file:///path" destination, the demo default): the object at key
// "a/b.zip" is the file <dir>/a/b.zip, readable with ordinary tools.
//
// # Layout
//
// Next to each object a hidden sidecar, <dir>/a/.b.zip.meta.json, holds its
// content type, user metadata, size and SHA-256 (also its ETag). Writes go
// to hidden temporary files in the destination directory (".put-*",
// ".upload-*", ".meta-*") and are renamed into place. A file named
// ".archiver.lock" at the root serialises commits between goroutines and
// processes. Names starting with "." are never objects: keys may not have
// segments starting with a dot.
//
// # Delivery semantics
//
// Put and Complete write and fsync the data and the sidecar, then, holding
// the lock, check the key (PutOptions.IfAbsent), rename the sidecar and then
// the data into place, and fsync the directory. An object exists once its
// data file does, so no partial object is ever visible; a sidecar that does
// not belong to the file next to it (its recorded inode differs, as after a
// crash during an overwrite) is ignored. Temporary files of a crashed Put
// stay hidden until removed by hand; those of a crashed upload are removed
// by the next CreateUpload at the same key. Every path goes through
// os.Root, so neither keys nor symlinks can reach outside the directory.
//
// # Errors
//
// Errors read "filestore: <verb> <object> <key>: <cause>". A missing object
// is [archive.ErrNotFound], a taken key on a create-only write
// [archive.ErrExists], a SHA-256 different from PutOptions.SHA256 a
// *[ChecksumError] (the store always hashes what it writes), and a reader
// shorter than the size wraps io.ErrUnexpectedEOF.
//
// The package needs a Unix system (flock, inode numbers).
package filestore
