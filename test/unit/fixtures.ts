/** Shared test data for unit tests. */
import type { ContainerView } from '../../src/engine/docker.js';

/** A running container of `service` in instance feat-a, with no ports, labels or health history. */
export function containerView(service: string, over: Partial<ContainerView> = {}): ContainerView {
  return {
    id: `id-${service}`,
    name: `feat-a-${service}-1`,
    service,
    state: 'running',
    exitCode: 0,
    oomKilled: false,
    restartCount: 0,
    healthLog: [],
    ports: [],
    labels: {},
    image: 'demo-app',
    imageId: 'sha256:0123456789ab',
    tty: false,
    mounts: [],
    ...over,
  };
}
