// Two storage accounts, both Entra-ID-only (shared key access disabled):
// * host: the Functions host (coordination blobs, keys), the Durable task hub of the
//   Azure Storage backend (queues, tables, lease and large-message blobs) and the
//   Flex Consumption deployment package container;
// * photos: sources, renditions, per-batch plans/results and manifests (IMAGES connection).
// Kept apart so batch traffic never throttles the task hub, and so the photos account's
// access (who may read the pictures) is managed on its own.
@minLength(3)
@maxLength(24)
param hostAccountName string
@minLength(3)
@maxLength(24)
param photosAccountName string
param deploymentContainerName string
param location string
param tags object = {}

@description('Replication of the photos account. LRS by default; pick ZRS/GRS if the renditions must survive a zone or region loss.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param photosSku string = 'Standard_LRS'

var commonProperties = {
  accessTier: 'Hot'
  allowBlobPublicAccess: false
  allowCrossTenantReplication: false
  allowSharedKeyAccess: false
  defaultToOAuthAuthentication: true
  dnsEndpointType: 'Standard'
  minimumTlsVersion: 'TLS1_2'
  publicNetworkAccess: 'Enabled'
  supportsHttpsTrafficOnly: true
  networkAcls: {
    bypass: 'AzureServices'
    defaultAction: 'Allow'
  }
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: The name is a parameter; main.bicep builds it as 'sthost' + uniqueString (lowercase letters and digits, 19 characters), inside the 3-24 rule Checkov cannot evaluate.
  // checkov:skip=CKV_AZURE_35: No virtual network in this profile: Flex Consumption reaches the account over its public endpoint, which only accepts Entra ID tokens (shared key disabled) from identities with a data role.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: the public endpoint stays enabled for the Flex Consumption host; authorization is Entra ID only.
  // checkov:skip=CKV_AZURE_206: The host account holds transient task-hub state and the deployment package (both re-creatable); LRS is what the Azure-Samples Flex templates use.
  name: hostAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: commonProperties
}

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

// Flex Consumption deploys the app package to this container and the host reads it
// with the app's identity (functionAppConfig.deployment.storage).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource photosStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: The name is a parameter; main.bicep builds it as 'stphotos' + uniqueString (lowercase letters and digits, 21 characters), inside the 3-24 rule Checkov cannot evaluate.
  // checkov:skip=CKV_AZURE_35: No virtual network in this profile: the app reaches the account over its public endpoint, which only accepts Entra ID tokens (shared key disabled).
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35.
  // checkov:skip=CKV_AZURE_206: Replication is the photosSku parameter (LRS by default): renditions can be re-rendered from the sources; choose GRS for sources that exist nowhere else.
  name: photosAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: photosSku
  }
  properties: commonProperties
}

output hostAccountName string = hostStorage.name
output hostBlobEndpoint string = hostStorage.properties.primaryEndpoints.blob
output photosAccountName string = photosStorage.name
output photosBlobEndpoint string = photosStorage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
