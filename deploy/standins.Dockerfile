# Local stand-ins for the official NATS and MinIO images, for machines that
# cannot pull from a registry. deploy/build-images.sh -standins builds them
# FROM scratch from static binaries and tags them with the names that
# deploy/compose.yaml uses by default, so "docker-compose up" finds them
# locally. They behave like the official images for what compose.yaml
# needs: the same entrypoint, arguments and ports. Unlike the official ones
# they run as UID 65532.
#
# Context layout: nats-server, minio (static binaries).

FROM scratch AS nats
ARG VERSION=v2.15.2
LABEL org.opencontainers.image.title="nats-server (local stand-in)" \
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
LABEL org.opencontainers.image.title="minio (local stand-in)" \
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
