#!/usr/bin/env bash
# Builds the container images of artifact-archiver.
#
#   deploy/build-images.sh [--standins] [--check] [TARGET...]
#
# The binaries are compiled on this host (static, CGO_ENABLED=0) into a
# context directory and copied into images built from deploy/Dockerfile, so
# no Go toolchain image is pulled. With the default BASE the base image is
# distroless (pulled once); CI and machines without a registry use
#
#   BASE=scratch deploy/build-images.sh --check
#
# Options:
#   --standins  also build FROM-scratch stand-ins for the NATS and MinIO
#               images, for machines that cannot pull them. They are tagged
#               under our own names, never the official images' ones:
#               $IMAGE_REPO/nats-standin:<nats-server version> and
#               $IMAGE_REPO/minio-standin:<minio version>. The script prints
#               NATS_IMAGE=... and MINIO_IMAGE=... lines; export them for
#               deploy/compose.yaml, e.g.
#                 export $(deploy/build-images.sh --standins | grep _IMAGE=)
#               nats-server is built from the version pinned in go.mod;
#               minio is taken from .cache/bin/minio (installed there with
#               "go install" if missing: about 3 minutes).
#   --check     after building, run "IMAGE -h" for every target (must exit 0
#               and list its environment variables), check the user and the
#               labels, and validate deploy/compose.yaml with
#               "docker compose config" (or docker-compose v1).
#
# Every image built here carries the label
# io.artifact-archiver.project=artifact-archiver (PROJECT_LABEL below, set
# by deploy/Dockerfile and deploy/standins.Dockerfile; --check verifies it);
# .ci/clean-images (make clean-images) removes every image and container
# that carries it.
#
# Environment (defaults in brackets):
#   BASE        base image [gcr.io/distroless/static-debian12:nonroot]
#   IMAGE_REPO  image name prefix [ghcr.io/artifact-archiver]; images are
#               $IMAGE_REPO/<target>:$IMAGE_TAG
#   IMAGE_TAG   image tag [dev]
#   GOARCH      target architecture [the host's]
#   CONTEXT     build context directory [.cache/image-context]
#   NATS_STANDIN   stand-in name [$IMAGE_REPO/nats-standin:<version>]
#   MINIO_STANDIN  stand-in name [$IMAGE_REPO/minio-standin:<version>]
#
# deploy/compose.yaml defaults to the official NATS and MinIO images
# (OFFICIAL_NATS_IMAGE and OFFICIAL_MINIO_IMAGE below; the integration suite
# uses the same) and runs the stand-ins once NATS_IMAGE and MINIO_IMAGE are
# exported as --standins prints them.
set -euo pipefail

# Every image target; each needs a stage in deploy/Dockerfile and a main
# package in cmd/<target> or deploy/<target> (deploy/deploy_test.go checks).
TARGETS=(webhook worker archivectl ghsim mkbucket)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${BASE:-gcr.io/distroless/static-debian12:nonroot}
IMAGE_REPO=${IMAGE_REPO:-ghcr.io/artifact-archiver}
IMAGE_TAG=${IMAGE_TAG:-dev}
CONTEXT=${CONTEXT:-$ROOT/.cache/image-context}
NATS_STANDIN=${NATS_STANDIN:-}
MINIO_STANDIN=${MINIO_STANDIN:-}
# The official images compose.yaml runs by default (deploy/images_test.go
# checks that compose.yaml and integration/docker_test.go agree).
OFFICIAL_NATS_IMAGE=nats:2.15.2
OFFICIAL_MINIO_IMAGE=minio/minio:RELEASE.2025-09-07T16-13-09Z
# The label of every image the project builds (.ci/clean-images).
PROJECT_LABEL=io.artifact-archiver.project=artifact-archiver
GOARCH=${GOARCH:-$(go env GOARCH)}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

standins=false
check=false
selected=()
for arg in "$@"; do
	case $arg in
	--standins) standins=true ;;
	--check) check=true ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "build-images: unknown option $arg" >&2
		exit 2
		;;
	*) selected+=("$arg") ;;
	esac
done
if ((${#selected[@]} == 0)); then
	selected=("${TARGETS[@]}")
fi

log() { printf 'build-images: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# compose runs "docker compose" (v2 plugin) or the v1 docker-compose binary.
compose() {
	if docker compose version >/dev/null 2>&1; then
		docker compose "$@"
	elif command -v docker-compose >/dev/null; then
		docker-compose "$@"
	else
		die "neither 'docker compose' nor docker-compose is installed"
	fi
}

# dbuild runs docker build quietly, showing its output only on failure
# (the legacy builder's deprecation notice included).
dbuild() {
	local out
	if ! out=$(docker build --quiet "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		die "docker build $* failed"
	fi
}

# docker_tag turns a version into a valid docker tag: lower case,
# [a-z0-9_.-], not starting with . or -, at most 128 characters.
docker_tag() {
	local t
	t=$(printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_.-' '-')
	t=${t#[.-]}
	printf '%s' "${t:0:128}"
}

# has_project_label checks that an image carries $PROJECT_LABEL.
has_project_label() {
	local got
	got=$(docker image inspect -f "{{index .Config.Labels \"${PROJECT_LABEL%%=*}\"}}" "$1")
	[[ $got == "${PROJECT_LABEL#*=}" ]]
}

# is_static checks that a Go binary was built with CGO_ENABLED=0.
is_static() { go version -m "$1" 2>/dev/null | grep -q 'CGO_ENABLED=0'; }

package_of() {
	local t=$1
	if [[ -d $ROOT/cmd/$t ]]; then
		echo "./cmd/$t"
	elif [[ -d $ROOT/deploy/$t ]]; then
		echo "./deploy/$t"
	else
		die "no main package for target $t (cmd/$t or deploy/$t)"
	fi
}

cd "$ROOT"
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
CREATED=${CREATED:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}

[[ -r $CA_BUNDLE ]] || die "CA bundle $CA_BUNDLE not found (set CA_BUNDLE)"
mkdir -p "$CONTEXT/bin" "$CONTEXT/empty"
cp "$CA_BUNDLE" "$CONTEXT/ca-certificates.crt"

for t in "${selected[@]}"; do
	pkg=$(package_of "$t")
	log "go build $pkg (linux/$GOARCH, static)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath -ldflags='-s -w -buildid=' \
		-o "$CONTEXT/bin/$t" "$pkg"
	is_static "$CONTEXT/bin/$t" || die "$t is not a static (CGO_ENABLED=0) build"
done

for t in "${selected[@]}"; do
	image="$IMAGE_REPO/$t:$IMAGE_TAG"
	log "docker build $image (BASE=$BASE)"
	dbuild -f deploy/Dockerfile --target "$t" \
		--build-arg "BASE=$BASE" --build-arg "VERSION=$VERSION" \
		--build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" \
		-t "$image" "$CONTEXT"
done

if $standins; then
	log "go build nats-server (version pinned in go.mod, static)"
	CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH go build -trimpath -ldflags='-s -w' \
		-o "$CONTEXT/nats-server" github.com/nats-io/nats-server/v2
	minio=${MINIO_BIN:-$ROOT/.cache/bin/minio}
	if [[ ! -x $minio ]]; then
		log "installing minio into .cache/bin (about 3 minutes)"
		CGO_ENABLED=0 GOBIN=$ROOT/.cache/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
	fi
	is_static "$minio" || die "$minio is not a static build; rebuild it with CGO_ENABLED=0"
	cp "$minio" "$CONTEXT/minio"
	nats_version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
	minio_version=$(go version -m "$minio" | awk '$1 == "mod" {print $3; exit}')
	NATS_STANDIN=${NATS_STANDIN:-$IMAGE_REPO/nats-standin:$(docker_tag "$nats_version")}
	MINIO_STANDIN=${MINIO_STANDIN:-$IMAGE_REPO/minio-standin:$(docker_tag "$minio_version")}
	for name in "$NATS_STANDIN" "$MINIO_STANDIN"; do
		case $name in
		"$OFFICIAL_NATS_IMAGE" | "$OFFICIAL_MINIO_IMAGE") die "stand-in name $name is an official image's name: choose our own" ;;
		esac
	done
	log "docker build $NATS_STANDIN (stand-in, nats-server $nats_version)"
	dbuild -f deploy/standins.Dockerfile --target nats \
		--build-arg "VERSION=$nats_version" -t "$NATS_STANDIN" "$CONTEXT"
	log "docker build $MINIO_STANDIN (stand-in, minio $minio_version)"
	dbuild -f deploy/standins.Dockerfile --target minio \
		--build-arg "VERSION=$minio_version" -t "$MINIO_STANDIN" "$CONTEXT"
	# Start nothing from a name that was not built as asked.
	for name in "$NATS_STANDIN" "$MINIO_STANDIN"; do
		docker image inspect "$name" >/dev/null 2>&1 || die "built $name, but the engine has no image by that name"
	done
fi

if $check; then
	declare -A marker=([webhook]=GITHUB_WEBHOOK_SECRET [worker]=ARCHIVER_DESTINATION [ghsim]=GHSIM_SCENARIO [mkbucket]=ARCHIVER_DESTINATION)
	for t in "${selected[@]}"; do
		image="$IMAGE_REPO/$t:$IMAGE_TAG"
		user=$(docker image inspect -f '{{.Config.User}}' "$image")
		[[ $user == 65532:65532 ]] || die "$image runs as '$user', want 65532:65532"
		title=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$image")
		[[ -n $title ]] || die "$image has no org.opencontainers.image.title label"
		has_project_label "$image" || die "$image lacks the label $PROJECT_LABEL"
		# Read-only root, no capabilities, as in Kubernetes.
		if ! out=$(docker run --rm --read-only --cap-drop ALL --security-opt no-new-privileges "$image" -h 2>&1); then
			printf '%s\n' "$out" >&2
			die "$image -h failed"
		fi
		want=${marker[$t]:-}
		if [[ -n $want && $out != *"$want"* ]]; then
			printf '%s\n' "$out" >&2
			die "$image -h does not mention $want"
		fi
		log "ok: $image -h ($(printf '%s\n' "$out" | grep -c '[A-Z][A-Z0-9_]*_[A-Z]') lines naming variables), user $user"
	done
	if $standins; then
		for name in "$NATS_STANDIN" "$MINIO_STANDIN"; do
			has_project_label "$name" || die "$name lacks the label $PROJECT_LABEL"
			docker run --rm --read-only "$name" --version >/dev/null || die "$name --version failed"
		done
		log "ok: stand-ins $NATS_STANDIN and $MINIO_STANDIN run"
	fi
	(
		export IMAGE_REPO IMAGE_TAG
		if $standins; then
			export NATS_IMAGE=$NATS_STANDIN MINIO_IMAGE=$MINIO_STANDIN
		fi
		compose -f deploy/compose.yaml config -q
	)
	log "ok: deploy/compose.yaml validates"
fi

for t in "${selected[@]}"; do
	echo "$IMAGE_REPO/$t:$IMAGE_TAG"
done
if $standins; then
	# What compose needs to run the stand-ins instead of the official images.
	echo "NATS_IMAGE=$NATS_STANDIN"
	echo "MINIO_IMAGE=$MINIO_STANDIN"
	log "stand-ins built; for deploy/compose.yaml: export NATS_IMAGE=$NATS_STANDIN MINIO_IMAGE=$MINIO_STANDIN"
fi
