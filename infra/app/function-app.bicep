// The Flex Consumption plan and function app (Python 3.11), its app settings and scale.
// Shapes follow the Azure-Samples functions-quickstart-python-*-azd templates
// (infra/app/api.bicep), written as plain resources so Checkov can read every property.
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param hostAccountName string
param photosBlobEndpoint string
param deploymentContainerUrl string
param applicationInsightsName string

@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'
param schedulerEndpoint string = ''
param taskHubName string = ''
param notifyWebhookUrl string = ''
param instanceMemoryMB int = 4096
param maximumInstanceCount int = 100
param durableAlwaysReady int = 1

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Settings the Functions host reads. Identity-based host storage: only the
// AzureWebJobsStorage__* form is set. An exact-name AzureWebJobsStorage setting (what
// `az functionapp create --storage-account` writes, with an account key) would win over it
// and fail with shared key access disabled.
var hostSettings = {
  AzureWebJobsStorage__accountName: hostAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // The connection string names the ingestion endpoint (its instrumentation key is an
  // identifier, not a credential: local auth is disabled, so ingestion needs the token below).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

// Settings the app reads (imagebatch/settings.py, storage/clients.py, imagebatch/retention.py), with the code's
// defaults written out so they are visible and changeable in the portal.
// tests/test_infra.py checks this list against the code.
var appSettings = {
  IMAGES_STORAGE_CONNECTION: 'IMAGES'
  IMAGES__blobServiceUri: photosBlobEndpoint
  IMAGES__credential: 'managedidentity'
  IMAGES__clientId: identityClientId
  NOTIFY_WEBHOOK_URL: notifyWebhookUrl
  NOTIFY_TIMEOUT_SECONDS: '10'
  NOTIFY_ATTEMPTS: '3'
  IMAGE_MAX_PIXELS: '100000000'
  MAX_SOURCE_BYTES: '268435456'
  RENDITION_CACHE_CONTROL: 'public, max-age=31536000, immutable'
  LIST_PAGE_SIZE: '5000'
  ACTIVITY_RETRY_FIRST_INTERVAL_MS: '2000'
  ACTIVITY_RETRY_MAX_ATTEMPTS: '4'
  SHARD_SIZE: ''
  IMAGE_BACKEND: 'auto'
  IMAGE_MAX_DECODE_MB: '256'
  IMAGE_MEMORY_BUDGET_MB: '1024'
  STORAGE_RETRY_TOTAL: '3'
  STORAGE_RETRY_INITIAL_BACKOFF: '1'
  STORAGE_RETRY_INCREMENT_BASE: '2'
  HISTORY_RETENTION_DAYS: '7'
}

// Scale-out backend profile: infra/host.dts.json (packaged as host.json by the azd hook) reads
// these. The connection carries no secret: the scheduler authenticates the identity.
var durableTaskSchedulerSettings = {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${schedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'
  TASKHUB_NAME: taskHubName
}

var allSettings = union(hostSettings, appSettings, durableBackend == 'DurableTaskScheduler' ? durableTaskSchedulerSettings : {})

var durableAlwaysReadyConfig = [
  {
    name: 'durable'
    instanceCount: durableAlwaysReady
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy is not part of this profile (availability-zone support on Flex Consumption is region-dependent).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Callers authenticate with function keys (auth level FUNCTION); client certificates would break the CLI and webhooks.
  // checkov:skip=CKV_AZURE_222: The app serves a public HTTP API (POST /api/batches with a function key); no virtual network or private endpoint in this profile.
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no fixed instance count: it scales per function group from zero (durable group: durableAlwaysReady warm instances), and the platform replaces failed instances.
  // checkov:skip=CKV_AZURE_213: The app has no health endpoint (every route needs a function key); Durable work survives a lost instance through the task hub.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // Durable guidance for Flex Consumption: keep one instance of the `durable`
        // group (orchestrators + activities) warm, so work queued after an idle period
        // does not wait for a cold start.
        alwaysReady: durableAlwaysReady > 0 ? durableAlwaysReadyConfig : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Checkov applies its Microsoft.Web/sites/config (web configuration) policies to this
// appsettings collection too; the skips say why each does not apply.
resource functionAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: App Service Authentication (EasyAuth) is not supported on Flex Consumption; callers use function keys.
  // checkov:skip=CKV_AZURE_63: App Service HTTP logs are not available to Functions on Flex Consumption; requests are logged to Application Insights.
  // checkov:skip=CKV_AZURE_65: Detailed error pages are an App Service web-app feature; Functions errors go to Application Insights.
  // checkov:skip=CKV_AZURE_66: Failed request tracing is an App Service (IIS) feature; Functions requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: .NET Framework version does not apply: this is a Python 3.11 app.
  // checkov:skip=CKV_AZURE_88: Flex Consumption mounts no Azure Files content share; the package comes from the deployment blob container.
  // checkov:skip=CKV_AZURE_222: Same as on the site: the HTTP API is public by design in this profile.
  parent: functionApp
  name: 'appsettings'
  properties: allSettings
}

// FTP with a publishing password off. SCM basic auth is left at its default because
// `func azure functionapp publish` (the code-only update path) may still need it.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
