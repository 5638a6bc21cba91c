// The app's user-assigned managed identity. User-assigned rather than system-assigned:
// it exists before the app, so its role assignments are in place when the host first
// starts, it survives re-creating the app, and the Durable Task Scheduler docs recommend it.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output resourceId string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
