/** A stable colour per service, so one service looks the same in every
 * trace, flow and chart. */
const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948',
  '#ff9da7', '#9c755f', '#5778a4', '#e49444', '#6a9f58', '#967662',
  '#a87c9f', '#85b6b2', '#d1615d', '#e7ca60',
];

export function serviceColor(service: string): string {
  let h = 2166136261;
  for (let i = 0; i < service.length; i++) {
    h ^= service.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return PALETTE[(h >>> 0) % PALETTE.length];
}

/** The platforms' own colours (CSS variables), for nodes and badges:
 * Seam's `platform` (kubernetes, faas) refined by the resource's
 * `cloud.platform` where it says which function service ran it. */
export function platformVar(platform: string, cloudPlatform?: string | null): string {
  if (platform === 'kubernetes') return 'var(--k8s)';
  if (platform === 'faas') {
    if (cloudPlatform === 'gcp_cloud_run') return 'var(--cloud_run)';
    if (cloudPlatform === 'azure_functions') return 'var(--azure_functions)';
    return 'var(--lambda)';
  }
  return 'var(--other)';
}

/** How a platform is named to people. */
export function platformName(platform: string, cloudPlatform?: string | null): string {
  const names: Record<string, string> = {
    aws_lambda: 'Lambda',
    gcp_cloud_run: 'Cloud Run',
    gcp_cloud_functions: 'Cloud Functions',
    azure_functions: 'Azure Functions',
    aws_eks: 'EKS',
    gcp_kubernetes_engine: 'GKE',
    azure_aks: 'AKS',
  };
  if (cloudPlatform && names[cloudPlatform]) return names[cloudPlatform];
  return platform === 'faas' ? 'function' : platform;
}
