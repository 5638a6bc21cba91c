// Data-plane roles of the app's identity (and, optionally, of the deploying user).
// Every assignment names the principal by object id with principalType, so ARM does not
// have to look the new identity up in Entra ID (which fails while it replicates).
// Role ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
param hostAccountName string
param photosAccountName string
param applicationInsightsName string
param appPrincipalId string

@description('Object id of the deploying user; empty to grant nothing to a user.')
param userPrincipalId string = ''

// Host storage account (AzureWebJobsStorage): the Functions host needs Blob Data Owner
// (coordination blobs, keys, containers it creates); the Durable Azure Storage backend
// needs blobs (leases, large messages), queues (control + work-item) and tables
// (History, Instances); Table Data Contributor also lets the host write diagnostic events.
var hostStorageRoles = [
  {
    name: 'Storage Blob Data Owner'
    id: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  }
  {
    name: 'Storage Queue Data Contributor'
    id: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  }
  {
    name: 'Storage Table Data Contributor'
    id: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  }
]

// Photos account (IMAGES connection): list and read sources, write renditions, plans,
// shard results and manifests. No queues or tables are used there.
var photosStorageRoles = [
  {
    name: 'Storage Blob Data Contributor'
    id: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  }
]

// Application Insights with local auth disabled: publishing telemetry needs this role.
var monitoringRoles = [
  {
    name: 'Monitoring Metrics Publisher'
    id: '3913510d-42f4-4e42-8a64-420c390055eb'
  }
]

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostAccountName
}

resource photosStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: photosAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource hostStorageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in hostStorageRoles: {
  name: guid(hostStorage.id, appPrincipalId, role.id)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.id)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: '${role.name}: Functions host and Durable task hub'
  }
}]

resource photosStorageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in photosStorageRoles: {
  name: guid(photosStorage.id, appPrincipalId, role.id)
  scope: photosStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.id)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: '${role.name}: image sources and renditions'
  }
}]

resource monitoringAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in monitoringRoles: {
  name: guid(applicationInsights.id, appPrincipalId, role.id)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.id)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    description: '${role.name}: identity-based telemetry ingestion'
  }
}]

// The deploying user may upload test photos and read renditions (optional).
resource userPhotosAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in photosStorageRoles: if (!empty(userPrincipalId)) {
  name: guid(photosStorage.id, userPrincipalId, role.id)
  scope: photosStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.id)
    principalId: userPrincipalId
    principalType: 'User'
    description: '${role.name}: deploying user, for tests'
  }
}]
