# Local stand-ins for the official NATS and MinIO images, for machines that
# cannot pull from a registry. deploy/build-images.sh --standins builds them
# FROM scratch from static binaries, under our own names
# ($IMAGE_REPO/nats-standin:<version>, $IMAGE_REPO/minio-standin:<version>;
# the integration suite uses archiver-it/<kind>-standin:<version>-<hash>),
# never under the official images' names: export NATS_IMAGE and MINIO_IMAGE
# as build-images.sh prints them, and compose runs them. They behave like
# the official images for what compose.yaml needs: the same entrypoint,
# arguments and ports. Unlike the official ones they run as UID 65532.
# Like every image the project builds, they carry the label
# io.artifact-archiver.project=artifact-archiver (.ci/clean-images).
#
# Context layout: nats-server, minio (static binaries), empty/ (a directory).

FROM scratch AS nats
ARG VERSION=v2.15.2
LABEL io.artifact-archiver.project="artifact-archiver" \
      org.opencontainers.image.title="nats-server (local stand-in)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/nats-io/nats-server"
COPY --chown=65532:65532 nats-server /nats-server
# A named volume mounted at /data starts as a copy of this (owned) directory.
COPY --chown=65532:65532 empty/ /data/
USER 65532:65532
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]

FROM scratch AS minio
ARG VERSION=unknown
LABEL io.artifact-archiver.project="artifact-archiver" \
      org.opencontainers.image.title="minio (local stand-in)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/minio/minio"
COPY --chown=65532:65532 minio /usr/bin/minio
COPY --chown=65532:65532 empty/ /data/
# MinIO writes its config below $HOME/.minio when it cannot use /root.
COPY --chown=65532:65532 empty/ /home/minio/
ENV HOME=/home/minio
USER 65532:65532
EXPOSE 9000 9001
ENTRYPOINT ["/usr/bin/minio"]
