package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/artifact-archiver/artifact-archiver/pkg/archive"
)

// checkManifest returns what is wrong with the run's manifest at key and the
// one artifact object it lists (nil if nothing); an error if the manifest
// cannot be read.
func (b *bench) checkManifest(ctx context.Context, key string, size int64, want string) ([]string, error) {
	m, err := b.readManifest(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(m.Artifacts) != 1 {
		return []string{fmt.Sprintf("manifest lists %d artifacts", len(m.Artifacts))}, nil
	}
	var problems []string
	a := m.Artifacts[0]
	if a.Status != archive.StatusArchived {
		problems = append(problems, "status "+a.Status+": "+a.Error)
	}
	if a.SHA256 != want {
		problems = append(problems, fmt.Sprintf("manifest sha256 %s, simulator %s", a.SHA256, want))
	}
	if a.Size != size {
		problems = append(problems, fmt.Sprintf("manifest size %d", a.Size))
	}
	if p := b.checkObject(ctx, destPref+"/"+a.Key, size, want); p != "" {
		problems = append(problems, p)
	}
	return problems, nil
}

// readManifest reads and decodes the manifest at key.
func (b *bench) readManifest(ctx context.Context, key string) (*archive.Manifest, error) {
	out, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return archive.DecodeManifest(data)
}

// checkObject returns what is wrong with the object at key ("" if nothing).
func (b *bench) checkObject(ctx context.Context, key string, size int64, want string) string {
	head, err := b.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Sprintf("head %s: %v", key, err)
	}
	if n := aws.ToInt64(head.ContentLength); n != size {
		return fmt.Sprintf("object %s has %d bytes, want %d", key, n, size)
	}
	if !b.opt.readback {
		return ""
	}
	out, err := b.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Sprintf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return fmt.Sprintf("read %s: %v", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != want {
		return fmt.Sprintf("object %s read back: %d bytes, sha256 %s, want %s", key, n, got, want)
	}
	return ""
}

// deletePrefix deletes every object under prefix, so that MinIO does not
// fill up over the rounds; failures are logged.
func (b *bench) deletePrefix(ctx context.Context, prefix string) {
	p := s3.NewListObjectsV2Paginator(b.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			b.log.Printf("list %s: %v", prefix, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := b.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				b.log.Printf("delete %s: %v", aws.ToString(o.Key), err)
			}
		}
	}
}
