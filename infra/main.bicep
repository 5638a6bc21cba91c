// Image batch on Azure Durable Functions: everything `azd up` provisions.
//
// Subscription-scoped like the Azure-Samples functions-quickstart-python-*-azd templates:
// one resource group, then the modules in app/. Every connection is identity-based
// (no account key, connection string with a secret or SAS anywhere); docs/deploy.md maps
// each resource and role to the reason it exists.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; also seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource. Must offer Flex Consumption (and the Durable Task Scheduler when that backend is selected).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID). When set, that user gets data access to the photos account and the task hub for testing; leave empty in production.')
param principalId string = ''

@description('Durable backend: AzureStorage (default; queues, tables and blobs of the host storage account) or DurableTaskScheduler (the managed scale-out backend).')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('Durable Task Scheduler SKU when durableBackend is DurableTaskScheduler: Consumption (pay per action) or Dedicated (capacity units).')
@allowed([
  'Consumption'
  'Dedicated'
])
param schedulerSku string = 'Consumption'

@description('Capacity units for the Dedicated scheduler SKU (ignored for Consumption).')
@minValue(1)
@maxValue(3)
param schedulerCapacity int = 1

@description('Optional webhook NotifyCompletion POSTs the batch summary to (NOTIFY_WEBHOOK_URL).')
param notifyWebhookUrl string = ''

@description('Flex Consumption instance memory. 4096 MB gives the CPU-bound image activities two cores, which host.json maxConcurrentActivityFunctions (4) is sized for.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 4096

@description('Upper bound on Flex Consumption instances (cost ceiling).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances for the Durable trigger group (orchestrators, activities). Microsoft recommends 1 for Durable Functions on Flex Consumption.')
@minValue(0)
param durableAlwaysReady int = 1

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-imagebatch-${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-imagebatch-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    hostAccountName: 'sthost${resourceToken}'
    photosAccountName: 'stphotos${resourceToken}'
    deploymentContainerName: 'app-package-${take(resourceToken, 12)}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-imagebatch-${resourceToken}'
    applicationInsightsName: 'appi-imagebatch-${resourceToken}'
    location: location
    tags: tags
  }
}

module scheduler 'app/dts.bicep' = if (durableBackend == 'DurableTaskScheduler') {
  name: 'durableTaskScheduler'
  scope: rg
  params: {
    schedulerName: 'dts-imagebatch-${resourceToken}'
    taskHubName: 'imagebatch'
    skuName: schedulerSku
    skuCapacity: schedulerCapacity
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    hostAccountName: storage.outputs.hostAccountName
    photosAccountName: storage.outputs.photosAccountName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module api 'app/function-app.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-imagebatch-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    hostAccountName: storage.outputs.hostAccountName
    photosBlobEndpoint: storage.outputs.photosBlobEndpoint
    deploymentContainerUrl: '${storage.outputs.hostBlobEndpoint}${storage.outputs.deploymentContainerName}'
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    durableBackend: durableBackend
    schedulerEndpoint: durableBackend == 'DurableTaskScheduler' ? scheduler.outputs.endpoint : ''
    taskHubName: durableBackend == 'DurableTaskScheduler' ? scheduler.outputs.taskHubName : ''
    notifyWebhookUrl: notifyWebhookUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    durableAlwaysReady: durableAlwaysReady
  }
  // The host must not start before its identity can read its own storage and the task hub.
  dependsOn: [
    rbac
  ]
}

// Outputs: names and URLs only; nothing here is a secret (function keys stay in the app).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output API_BASE_URL string = '${api.outputs.uri}/api'
output HOST_STORAGE_ACCOUNT string = storage.outputs.hostAccountName
output PHOTOS_STORAGE_ACCOUNT string = storage.outputs.photosAccountName
output PHOTOS_BLOB_ENDPOINT string = storage.outputs.photosBlobEndpoint
output DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_SCHEDULER_ENDPOINT string = durableBackend == 'DurableTaskScheduler' ? scheduler.outputs.endpoint : ''
output DURABLE_TASK_HUB_NAME string = durableBackend == 'DurableTaskScheduler' ? scheduler.outputs.taskHubName : ''
